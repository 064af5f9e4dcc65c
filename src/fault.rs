//! Fault injection for the supervisor's tests, compiled into debug builds only: a
//! component asks [`panic_once`] at a chosen point, and panics there (once per process)
//! when the named environment variable is set, as a bug would.

/// Panics the first time it is called with `var` set in the environment (debug builds).
pub fn panic_once(var: &'static str) {
    #[cfg(debug_assertions)]
    {
        static FIRED: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
        if std::env::var_os(var).is_some() {
            let mut fired = FIRED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !fired.contains(&var) {
                fired.push(var);
                drop(fired);
                panic!("fault injected ({var})");
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = var;
}

/// True for the first N calls with `var` set to N in the environment (debug builds):
/// the caller then fails as the fault it names would make it fail.
pub fn fail_times(var: &'static str) -> bool {
    #[cfg(debug_assertions)]
    {
        static COUNTS: std::sync::Mutex<Vec<(&'static str, u32)>> =
            std::sync::Mutex::new(Vec::new());
        let Some(n) = std::env::var(var).ok().and_then(|v| v.parse::<u32>().ok()) else {
            return false;
        };
        let mut counts = COUNTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let i = match counts.iter().position(|(v, _)| *v == var) {
            Some(i) => i,
            None => {
                counts.push((var, 0));
                counts.len() - 1
            }
        };
        if counts[i].1 < n {
            counts[i].1 += 1;
            return true;
        }
        false
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = var;
        false
    }
}

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

//! How payments read to a person: amounts with their unit, flags and changes in words.
//! Used by the logs, the CLI and the status page, so that all three say the same thing.

use std::fmt;

use super::{Event, Flags, Payment, Status};

/// An amount in satoshis, shown as `150,000 sat`; `{:#}` shows it in BTC (`0.0015 BTC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sat(pub u64);

impl fmt::Display for Sat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return write!(f, "{} BTC", btc_decimal(self.0));
        }
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 4);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        write!(f, "{out} sat")
    }
}

/// Satoshis as a BTC decimal without floating point (`150000` → `0.0015`).
pub fn btc_decimal(sat: u64) -> String {
    let whole = sat / 100_000_000;
    let frac = sat % 100_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:08}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A flag's name in words (`late_payment` → `late payment`).
pub fn flag_words(name: &str) -> String {
    name.replace('_', " ")
}

impl fmt::Display for Flags {
    /// `late payment, reorged`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            return f.write_str("none");
        }
        let words: Vec<String> = names.iter().map(|n| flag_words(n)).collect();
        f.write_str(&words.join(", "))
    }
}

/// A status change in words: `completed → pending`, or `new → pending` at creation.
pub fn change_words(from: Option<Status>, to: Status) -> String {
    format!("{} → {to}", from.map_or("new", Status::as_str))
}

impl fmt::Display for Event {
    /// `completed → pending (reorg)`; the reason is left out when it says nothing more.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&change_words(self.from, self.to))?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        Ok(())
    }
}

impl Payment {
    /// What is still to pay: the amount less what arrived, while the payment waits for money.
    pub fn remaining_sat(&self) -> u64 {
        match self.status {
            Status::Pending => self.amount_sat.saturating_sub(self.received_sat),
            _ => 0,
        }
    }

    /// True once the full amount arrived (in the mempool or deeper) and stayed.
    pub fn is_paid(&self) -> bool {
        matches!(
            self.status,
            Status::Unconfirmed | Status::Confirmed | Status::Completed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_with_their_unit() {
        assert_eq!(Sat(0).to_string(), "0 sat");
        assert_eq!(Sat(999).to_string(), "999 sat");
        assert_eq!(Sat(1_000).to_string(), "1,000 sat");
        assert_eq!(Sat(150_000).to_string(), "150,000 sat");
        assert_eq!(
            Sat(2_100_000_000_000_000).to_string(),
            "2,100,000,000,000,000 sat"
        );
        assert_eq!(format!("{:#}", Sat(150_000)), "0.0015 BTC");
        assert_eq!(format!("{:#}", Sat(100_000_000)), "1 BTC");
        assert_eq!(format!("{:#}", Sat(1)), "0.00000001 BTC");
    }

    #[test]
    fn changes_and_flags_read_in_words() {
        let ev = Event {
            at: 0,
            from: Some(Status::Completed),
            to: Status::Pending,
            reason: "reorg".into(),
            txids: vec![],
        };
        assert_eq!(ev.to_string(), "completed → pending (reorg)");
        let created = Event {
            from: None,
            reason: String::new(),
            ..ev
        };
        assert_eq!(created.to_string(), "new → pending");
        assert_eq!(Flags::default().to_string(), "none");
        let f = Flags {
            late_payment: true,
            money_lost: true,
            ..Flags::default()
        };
        assert_eq!(f.to_string(), "late payment, money lost");
    }
}

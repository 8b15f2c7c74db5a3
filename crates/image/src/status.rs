//! The image status machine, exactly Glance's (`glance/domain/__init__.py`): which
//! status may follow which. Every status change in this crate goes through
//! [`Status::can_become`].

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Queued,
    Saving,
    Uploading,
    Importing,
    Active,
    Killed,
    PendingDelete,
    Deleted,
    Deactivated,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Queued,
        Status::Saving,
        Status::Uploading,
        Status::Importing,
        Status::Active,
        Status::Killed,
        Status::PendingDelete,
        Status::Deleted,
        Status::Deactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Saving => "saving",
            Status::Uploading => "uploading",
            Status::Importing => "importing",
            Status::Active => "active",
            Status::Killed => "killed",
            Status::PendingDelete => "pending_delete",
            Status::Deleted => "deleted",
            Status::Deactivated => "deactivated",
        }
    }

    /// Glance's allowed transitions.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        match self {
            Queued => matches!(next, Saving | Uploading | Importing | Active | Deleted),
            Saving => matches!(next, Active | Killed | Deleted | Queued),
            Uploading => matches!(next, Importing | Queued | Deleted),
            Importing => matches!(next, Active | Deleted | Queued),
            Active => matches!(next, PendingDelete | Deleted | Deactivated),
            Killed => matches!(next, Deleted),
            PendingDelete => matches!(next, Deleted | Active),
            Deleted => false,
            Deactivated => matches!(next, Active | Deleted),
        }
    }

    /// Glance's message when a transition is refused (HTTP 409 on upload).
    pub fn transition_error(self, next: Status) -> String {
        format!("Image status transition from {self} to {next} is not allowed")
    }

    /// Whether the image has bytes that can be read.
    pub fn has_data(self) -> bool {
        matches!(self, Status::Active | Status::Deactivated)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Status::ALL.into_iter().find(|x| x.as_str() == s).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::Status::{self, *};

    #[test]
    fn transitions_are_glances_table() {
        let allowed: &[(Status, &[Status])] = &[
            (Queued, &[Saving, Uploading, Importing, Active, Deleted]),
            (Saving, &[Active, Killed, Deleted, Queued]),
            (Uploading, &[Importing, Queued, Deleted]),
            (Importing, &[Active, Deleted, Queued]),
            (Active, &[PendingDelete, Deleted, Deactivated]),
            (Killed, &[Deleted]),
            (PendingDelete, &[Deleted, Active]),
            (Deleted, &[]),
            (Deactivated, &[Active, Deleted]),
        ];
        for (from, to) in allowed {
            for next in Status::ALL {
                assert_eq!(
                    from.can_become(next),
                    to.contains(&next),
                    "{from} -> {next}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("bogus".parse::<Status>().is_err());
        assert_eq!(
            Active.transition_error(Saving),
            "Image status transition from active to saving is not allowed"
        );
    }
}

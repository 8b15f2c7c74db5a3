//! What the host agent does next for a server: a pure function of the server's
//! task and what the hypervisor reports, so a restarted agent picks up exactly
//! where the last one stopped (a guest that already exists is adopted, not
//! spawned twice; a guest already gone is not destroyed twice).

use ferrostack_virt::PowerState;

use crate::servers::model::{TaskState, VmState};

/// One idempotent step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Make or find the server's ports.
    AllocateNetwork,
    Spawn,
    /// The guest exists already (a restart mid-spawn): record it.
    Adopt,
    Destroy,
    /// The guest is gone: free the ports and mark the server deleted.
    FinishDelete,
    PowerOff,
    PowerOn,
    Reboot {
        hard: bool,
    },
    Pause,
    Unpause,
    Suspend,
    Resume,
    Rebuild,
    Resize,
    ConfirmResize,
    RevertResize,
    Snapshot,
    SetPassword,
    /// The guest vanished while an action needed it.
    Lost,
}

/// The next step for a server with `task` whose guest the hypervisor reports as
/// `observed` (`None` = unknown to it).
pub fn plan(task: TaskState, observed: Option<PowerState>) -> Step {
    use TaskState as T;
    match (task, observed) {
        (T::Deleting, Some(_)) => Step::Destroy,
        (T::Deleting, None) => Step::FinishDelete,
        (T::Scheduling | T::Networking, _) => Step::AllocateNetwork,
        // A guest that runs already is adopted; one that exists but does not run
        // (a spawn cut short between preparing and starting) is spawned again:
        // spawning is idempotent and never shows ACTIVE without a running guest.
        (T::Spawning, Some(PowerState::Running)) => Step::Adopt,
        (T::Spawning, _) => Step::Spawn,
        (T::Rebuilding, _) => Step::Rebuild,
        (_, None) => Step::Lost,
        (T::PoweringOff, Some(_)) => Step::PowerOff,
        (T::PoweringOn, Some(_)) => Step::PowerOn,
        (T::Rebooting, Some(_)) => Step::Reboot { hard: false },
        (T::RebootingHard, Some(_)) => Step::Reboot { hard: true },
        (T::Pausing, Some(_)) => Step::Pause,
        (T::Unpausing, Some(_)) => Step::Unpause,
        (T::Suspending, Some(_)) => Step::Suspend,
        (T::Resuming, Some(_)) => Step::Resume,
        (T::ResizePrep, Some(_)) => Step::Resize,
        (T::ResizeConfirming, Some(_)) => Step::ConfirmResize,
        (T::ResizeReverting, Some(_)) => Step::RevertResize,
        (T::ImageSnapshot, Some(_)) => Step::Snapshot,
        (T::UpdatingPassword, Some(_)) => Step::SetPassword,
    }
}

/// Where a server stands once `step` succeeded: (vm state, task state, power
/// state), `None` = unchanged. `vm_before` is the vm state the action started in.
pub fn after(
    step: Step,
    vm_before: VmState,
) -> (Option<VmState>, Option<TaskState>, Option<PowerState>) {
    use Step as S;
    match step {
        S::AllocateNetwork => (None, Some(TaskState::Spawning), None),
        S::Spawn | S::Adopt | S::Rebuild => (
            Some(if vm_before == VmState::Stopped && step == S::Rebuild {
                VmState::Stopped
            } else {
                VmState::Active
            }),
            None,
            Some(if vm_before == VmState::Stopped && step == S::Rebuild {
                PowerState::Shutdown
            } else {
                PowerState::Running
            }),
        ),
        S::Destroy => (None, Some(TaskState::Deleting), Some(PowerState::NoState)),
        S::FinishDelete => (Some(VmState::Deleted), None, Some(PowerState::NoState)),
        S::PowerOff => (Some(VmState::Stopped), None, Some(PowerState::Shutdown)),
        S::PowerOn | S::Reboot { .. } | S::Unpause | S::Resume => {
            (Some(VmState::Active), None, Some(PowerState::Running))
        }
        S::Pause => (Some(VmState::Paused), None, Some(PowerState::Paused)),
        S::Suspend => (Some(VmState::Suspended), None, Some(PowerState::Suspended)),
        S::Resize => (Some(VmState::Resized), None, None),
        S::ConfirmResize | S::RevertResize => (
            Some(if vm_before == VmState::Resized {
                VmState::Active
            } else {
                vm_before
            }),
            None,
            None,
        ),
        S::Snapshot | S::SetPassword => (None, None, None),
        S::Lost => (Some(VmState::Error), None, Some(PowerState::NoState)),
    }
}

/// The instance-action event name Nova records for a step.
pub fn event_name(step: Step) -> &'static str {
    match step {
        Step::AllocateNetwork | Step::Spawn | Step::Adopt => "compute__do_build_and_run_instance",
        Step::Destroy | Step::FinishDelete => "compute_terminate_instance",
        Step::PowerOff => "compute_stop_instance",
        Step::PowerOn => "compute_start_instance",
        Step::Reboot { .. } => "compute_reboot_instance",
        Step::Pause => "compute_pause_instance",
        Step::Unpause => "compute_unpause_instance",
        Step::Suspend => "compute_suspend_instance",
        Step::Resume => "compute_resume_instance",
        Step::Rebuild => "compute_rebuild_instance",
        Step::Resize => "compute_finish_resize",
        Step::ConfirmResize => "compute_confirm_resize",
        Step::RevertResize => "compute_finish_revert_resize",
        Step::Snapshot => "compute_snapshot_instance",
        Step::SetPassword => "compute_set_admin_password",
        Step::Lost => "compute_lost_instance",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PowerState as P;
    use TaskState as T;

    #[test]
    fn plan_table() {
        let cases = [
            (T::Networking, None, Step::AllocateNetwork),
            (T::Spawning, None, Step::Spawn),
            (T::Spawning, Some(P::Running), Step::Adopt),
            (T::Spawning, Some(P::Shutdown), Step::Spawn),
            (T::Deleting, Some(P::Running), Step::Destroy),
            (T::Deleting, None, Step::FinishDelete),
            (T::PoweringOff, Some(P::Running), Step::PowerOff),
            (T::PoweringOff, None, Step::Lost),
            (T::PoweringOn, Some(P::Shutdown), Step::PowerOn),
            (
                T::RebootingHard,
                Some(P::Shutdown),
                Step::Reboot { hard: true },
            ),
            (T::Rebooting, Some(P::Running), Step::Reboot { hard: false }),
            (T::Pausing, Some(P::Running), Step::Pause),
            (T::Suspending, Some(P::Running), Step::Suspend),
            (T::Rebuilding, None, Step::Rebuild),
            (T::ResizePrep, Some(P::Running), Step::Resize),
            (T::ImageSnapshot, Some(P::Running), Step::Snapshot),
        ];
        for (task, observed, want) in cases {
            assert_eq!(plan(task, observed), want, "{task:?} {observed:?}");
        }
    }

    #[test]
    fn steps_land_in_novas_states() {
        assert_eq!(
            after(Step::Spawn, VmState::Building).0,
            Some(VmState::Active)
        );
        assert_eq!(
            after(Step::AllocateNetwork, VmState::Building).1,
            Some(T::Spawning)
        );
        assert_eq!(
            after(Step::PowerOff, VmState::Active).0,
            Some(VmState::Stopped)
        );
        assert_eq!(
            after(Step::Resize, VmState::Active).0,
            Some(VmState::Resized)
        );
        assert_eq!(
            after(Step::Rebuild, VmState::Stopped).0,
            Some(VmState::Stopped)
        );
        assert_eq!(
            after(Step::FinishDelete, VmState::Active).0,
            Some(VmState::Deleted)
        );
    }
}

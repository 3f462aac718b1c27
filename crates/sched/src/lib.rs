//! How the threads of a K3s-DaaS process are scheduled by Linux (`sched_setattr(2)`, one thread
//! at a time). The master's threads all ask for a short EEVDF slice ([`SHORT_SLICE`], Linux
//! 6.12 and later); their share of the CPU is set by their nice value or policy:
//!
//! - its **latency-critical threads** (the main runtime: the admin's, the nodes' and the
//!   control plane's requests; the store committer, the audit writer, the leader elections)
//!   run at nice 0. Waking, one preempts a thread with a longer slice at once, and waits at
//!   most a short slice for one with the same;
//! - the threads of **users' and workloads' requests** run at a higher nice value (with the
//!   short slice too: one of them holding a lock that an admin's request waits for gets the
//!   CPU back within a short slice of each other user thread) or under `SCHED_IDLE` (which
//!   the kernel gives no custom slice).
//!
//! The slice is asked for with `SCHED_RESET_ON_FORK`: threads and processes the master's
//! threads create (containerd and the pods under it, in `daas up`) start with the kernel's
//! default and must ask for their own.

use std::time::Duration;

/// The slice the master's threads ask for: the shortest the kernel accepts (it clamps
/// requests to 0.1..=100 ms; the default is 0.7-3 ms, by the number of CPUs).
pub const SHORT_SLICE: Duration = Duration::from_micros(100);

/// A scheduling call the kernel refused.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error("reading the scheduling of thread {tid} (sched_getattr): {source}")]
    Read {
        tid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("setting the scheduling of this thread (sched_setattr): {0}")]
    Write(#[source] std::io::Error),
    /// Real-time and deadline threads are left as they are.
    #[error("this thread is scheduled by policy {0}, not by the fair scheduler")]
    NotFair(u32),
    #[error("nice value {0} is outside -20..=19")]
    BadNice(i32),
}

/// The fair scheduler's policies a thread can have here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `SCHED_OTHER`.
    Normal,
    /// `SCHED_BATCH`.
    Batch,
    /// `SCHED_IDLE`: runs only when no other thread wants the CPU.
    Idle,
    /// A real-time or deadline policy (its number).
    Other(u32),
}

impl Policy {
    fn from_raw(p: u32) -> Policy {
        match p as i32 {
            libc::SCHED_OTHER => Policy::Normal,
            libc::SCHED_BATCH => Policy::Batch,
            libc::SCHED_IDLE => Policy::Idle,
            _ => Policy::Other(p),
        }
    }

    fn raw(self) -> u32 {
        match self {
            Policy::Normal => libc::SCHED_OTHER as u32,
            Policy::Batch => libc::SCHED_BATCH as u32,
            Policy::Idle => libc::SCHED_IDLE as u32,
            Policy::Other(p) => p,
        }
    }
}

/// Whether a thread's slice is the kernel's default or one it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slice {
    /// The kernel's base slice (`/sys/kernel/debug/sched/base_slice_ns`).
    Default,
    /// Asked for with `sched_setattr` (`sched_runtime`).
    Custom(Duration),
}

/// How one thread is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadScheduling {
    pub policy: Policy,
    /// -20..=19.
    pub nice: i32,
    /// The slice the kernel reports for the thread (Linux 6.12 and later; None before, where
    /// the kernel neither reports nor honours custom slices).
    pub slice: Option<Duration>,
    /// Threads and processes this one creates start with the default policy and slice
    /// (`SCHED_RESET_ON_FORK`).
    pub reset_on_fork: bool,
}

/// `struct sched_attr` of `sched_setattr(2)` (its first version, 48 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

const ATTR_SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;
const RESET_ON_FORK: u64 = 0x01;

/// How thread `tid` of any process is scheduled (0: the calling thread).
pub fn of_thread(tid: i32) -> Result<ThreadScheduling, SchedError> {
    let mut a = SchedAttr::default();
    // SAFETY: sched_getattr writes at most ATTR_SIZE bytes into `a`, which is that large and
    // lives across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            tid,
            &mut a as *mut SchedAttr,
            ATTR_SIZE,
            0u32,
        )
    };
    if r != 0 {
        return Err(SchedError::Read {
            tid,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(ThreadScheduling {
        policy: Policy::from_raw(a.policy),
        nice: a.nice,
        slice: (a.runtime != 0).then(|| Duration::from_nanos(a.runtime)),
        reset_on_fork: a.flags & RESET_ON_FORK != 0,
    })
}

/// How the calling thread is scheduled.
pub fn this_thread() -> Result<ThreadScheduling, SchedError> {
    of_thread(0)
}

/// Schedule the calling thread under the fair `policy` at `nice`, with `slice`. The nice value
/// can only be raised without CAP_SYS_NICE.
pub fn set_this_thread(
    policy: Policy,
    nice: i32,
    slice: Slice,
    reset_on_fork: bool,
) -> Result<(), SchedError> {
    if let Policy::Other(p) = policy {
        return Err(SchedError::NotFair(p));
    }
    if !(-20..=19).contains(&nice) {
        return Err(SchedError::BadNice(nice));
    }
    let a = SchedAttr {
        size: ATTR_SIZE,
        policy: policy.raw(),
        flags: if reset_on_fork { RESET_ON_FORK } else { 0 },
        nice,
        priority: 0,
        runtime: match slice {
            Slice::Default => 0,
            Slice::Custom(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        },
        deadline: 0,
        period: 0,
    };
    // SAFETY: pid 0 is the calling thread; `a` is a complete sched_attr of ATTR_SIZE bytes
    // that the kernel only reads.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0u32) };
    if r == 0 {
        Ok(())
    } else {
        Err(SchedError::Write(std::io::Error::last_os_error()))
    }
}

/// What [`ask_for_short_slice`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceOutcome {
    /// The kernel runs the thread with this slice now.
    Applied(Duration),
    /// The kernel does not honour custom slices for fair threads (before Linux 6.12): the
    /// thread keeps the default.
    Unsupported,
}

/// Ask for [`SHORT_SLICE`] for the calling thread, keeping its policy and nice value; threads
/// and processes it creates start with the default slice.
pub fn ask_for_short_slice() -> Result<SliceOutcome, SchedError> {
    let now = this_thread()?;
    set_this_thread(now.policy, now.nice, Slice::Custom(SHORT_SLICE), true)?;
    Ok(match this_thread()?.slice {
        Some(s) => SliceOutcome::Applied(s),
        None => SliceOutcome::Unsupported,
    })
}

/// [`ask_for_short_slice`] for the calling thread, one of the latency-critical `role`, and log
/// the outcome. A kernel without custom slices is not an error: the thread keeps the default.
pub fn latency_critical(role: &str) -> Option<SliceOutcome> {
    match ask_for_short_slice() {
        Ok(o) => {
            tracing::debug!(role, outcome = ?o, "latency-critical thread");
            Some(o)
        }
        Err(e) => {
            tracing::warn!(role, error = %e, "could not give a latency-critical thread a short slice");
            None
        }
    }
}

/// The kernel's release (`uname -r`) as (major, minor).
fn kernel_release() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = s.trim().split(['.', '-']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether this kernel honours custom slices for fair threads (Linux 6.12, EEVDF's
/// `sched_runtime`).
pub fn kernel_has_custom_slices() -> bool {
    kernel_release().is_some_and(|v| v >= (6, 12))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `f` on a fresh thread (scheduling changes stay there).
    fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(f).join().expect("thread")
    }

    #[test]
    fn a_thread_gets_the_short_slice_and_keeps_its_nice_value() {
        let (outcome, after) = on_thread(|| {
            set_this_thread(Policy::Normal, 5, Slice::Default, false).unwrap();
            let outcome = ask_for_short_slice().unwrap();
            (outcome, this_thread().unwrap())
        });
        assert_eq!(after.nice, 5);
        assert_eq!(after.policy, Policy::Normal);
        assert!(after.reset_on_fork);
        if kernel_has_custom_slices() {
            assert_eq!(outcome, SliceOutcome::Applied(SHORT_SLICE));
            assert_eq!(after.slice, Some(SHORT_SLICE));
        } else {
            assert_eq!(outcome, SliceOutcome::Unsupported);
            assert_eq!(after.slice, None);
        }
    }

    #[test]
    fn threads_and_processes_it_creates_start_with_the_default_slice() {
        let (parent, child, process) = on_thread(|| {
            ask_for_short_slice().unwrap();
            let parent = this_thread().unwrap();
            let child = std::thread::spawn(|| this_thread().unwrap())
                .join()
                .unwrap();
            // A process started from this thread: its scheduling as the kernel reports it.
            let mut p = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .expect("sleep");
            let process = of_thread(p.id() as i32).unwrap();
            let _ = p.kill();
            let _ = p.wait();
            (parent, child, process)
        });
        assert!(!child.reset_on_fork && !process.reset_on_fork);
        if kernel_has_custom_slices() {
            assert_eq!(parent.slice, Some(SHORT_SLICE));
            assert!(child.slice.is_some_and(|s| s > SHORT_SLICE), "{child:?}");
            assert!(
                process.slice.is_some_and(|s| s > SHORT_SLICE),
                "{process:?}"
            );
        }
    }

    #[test]
    fn the_default_slice_comes_back_and_nice_goes_up() {
        let (short, back) = on_thread(|| {
            ask_for_short_slice().unwrap();
            let short = this_thread().unwrap();
            set_this_thread(Policy::Normal, 10, Slice::Default, false).unwrap();
            (short, this_thread().unwrap())
        });
        assert_eq!(back.nice, 10);
        assert!(!back.reset_on_fork);
        if kernel_has_custom_slices() {
            assert_eq!(short.slice, Some(SHORT_SLICE));
            assert!(back.slice.is_some_and(|s| s > SHORT_SLICE), "{back:?}");
        }
    }

    #[test]
    fn idle_policy_and_refusals() {
        let idle = on_thread(|| {
            set_this_thread(Policy::Idle, 0, Slice::Default, false).unwrap();
            this_thread().unwrap()
        });
        assert_eq!(idle.policy, Policy::Idle);
        assert!(matches!(
            set_this_thread(
                Policy::Other(libc::SCHED_FIFO as u32),
                0,
                Slice::Default,
                false
            ),
            Err(SchedError::NotFair(1))
        ));
        // No such thread.
        assert!(matches!(
            of_thread(i32::MAX),
            Err(SchedError::Read { tid: i32::MAX, .. })
        ));
        // A nice value outside -20..=19 is refused (the kernel would clamp it), and the thread
        // is unchanged.
        let before = this_thread().unwrap();
        let (err, after) = on_thread(|| {
            let err = set_this_thread(Policy::Normal, 40, Slice::Default, false).unwrap_err();
            (err, this_thread().unwrap())
        });
        assert!(matches!(err, SchedError::BadNice(40)), "{err}");
        assert_eq!(after.nice, before.nice);
    }

    #[test]
    fn kernel_release_parses() {
        let (major, _) = kernel_release().expect("a Linux release");
        assert!(major >= 3);
    }
}

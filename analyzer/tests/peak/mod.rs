//! Peak memory of the processes a test ran, from the kernel.

/// Peak resident memory of any child waited for so far, MiB.
pub fn children_peak_mib() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage into the pointer it is given, which points to a
    // zeroed rusage of the right size; RUSAGE_CHILDREN is a valid `who`.
    #[allow(unsafe_code)]
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    u64::try_from(usage.ru_maxrss).unwrap_or(0) / 1024
}

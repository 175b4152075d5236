//! The recorder's scheduling weight against the load it records.

/// Lowers this thread's nice value by `boost` (threads it starts inherit it). A busy host keeps
/// every core busy, and the recorder at the same weight as its load falls behind and loses
/// opens once the ring fills; a few nice levels keep it ahead (docs/benchmarks.md, "Design
/// figures").
pub fn boost_priority(boost: u8) -> std::io::Result<()> {
    if boost == 0 {
        return Ok(());
    }
    // SAFETY: getpriority/setpriority take no pointers; -1 is a valid result of getpriority,
    // so errno tells an error apart.
    unsafe {
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        if now == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let to = (now - i32::from(boost)).max(-20);
        if libc::setpriority(libc::PRIO_PROCESS, 0, to) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

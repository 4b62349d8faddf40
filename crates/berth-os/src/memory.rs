//! The daemon's own memory footprint.

/// Hands the pages of this program's own code and read-only data back to
/// the kernel (`MADV_PAGEOUT`), returning how many bytes were advised.
///
/// Start-up runs code that an idle daemon never runs again (argument
/// parsing, migrations, recovery); with page fault-around, it leaves most of
/// the binary resident. Paging it out after start-up frees that memory for
/// the machine; whatever is needed later faults back in from the page cache
/// or the file. Kernels without `MADV_PAGEOUT` (before 5.4) ignore it.
pub fn page_out_own_code() -> usize {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let exe = exe.to_string_lossy().into_owned();
    let mut advised = 0;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("");
        // Code and read-only data only: never writable pages.
        if path != exe || perms.contains('w') {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: advice on a mapping of our own; MADV_PAGEOUT does not
        // change its contents, only whether they are resident.
        if unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_PAGEOUT) } == 0 {
            advised += b - a;
        }
    }
    advised
}

//! Handing freed memory back to the system.
//!
//! glibc keeps the pages a process freed mapped, for its next allocations: after a burst that
//! allocated much at once (seeding, re-indexing, a round of password hashes) a server would stay
//! as large as the burst made it. The callers of [`release_freed_memory`] are those bursts' ends.

/// Makes every allocation of 4 MiB or more a mapping of its own, unmapped when it is freed.
/// glibc otherwise raises that threshold to the largest block freed so far (up to 32 MiB) and
/// keeps later blocks of that size in its per-thread arenas: each thread that once computed a
/// password hash (19 MiB) would go on holding one.
pub fn map_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes no pointer; it sets one of the allocator's parameters under its lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// Hands the pages the allocator holds free back to the system (glibc on Linux; elsewhere
/// nothing).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only walks the allocator's own free lists; glibc
    // makes it safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

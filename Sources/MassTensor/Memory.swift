internal import CMassBLAS

/// The process's memory as the allocator sees it.
public enum Memory {
    /// Sets the allocator up so that freed model memory can go back to the system; call once, before loading.
    public static func configureAllocator() { cmass_configure_allocator() }
    /// Hands the allocator's free pages back to the system (after a model is unloaded).
    public static func releaseFreePages() { cmass_release_free_memory() }
    /// Resident memory of the process, in bytes.
    public static var residentBytes: Int { Int(cmass_resident_bytes()) }
}

import ArgumentParser

/// The C allocator's settings for training. A training step allocates and frees the same large arrays
/// (activations, gradients) again and again; by default glibc gives each thread its own arena, whose heaps go
/// back to the kernel when they empty, and serves large blocks with fresh pages returned on free, so every step
/// page-faults and the kernel zeroes the pages again (about a tenth of a MiniLM fine-tuning step's samples in
/// perf). One arena (the main one: it keeps what it frees below the trim threshold), the largest mmap threshold
/// (32 MB) and no trimming keep freed memory for the next step: `mass bench train` went from 27.6 to 31 examples/s
/// with these settings given as GLIBC_TUNABLES (three alternating runs each), and page faults from about 28,000 to
/// 4,100 a step with them set here (and the embedding gradient's buffer reused). Set before any other thread
/// allocates, and only for the training commands: a server's request threads keep their own arenas.
enum Allocator {
    /// glibc's mallopt(3) (malloc.h is not in Swift's Glibc module); the parameters are malloc.h's values.
    @_silgen_name("mallopt")
    private static func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
    private static let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
    private static let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
    private static let arenaMax: Int32 = -8  // M_ARENA_MAX

    /// Whether the command line runs training: `mass train ...` or `mass bench train ...`.
    static func trains(_ arguments: [String]) -> Bool {
        let words = arguments.dropFirst().filter { !$0.hasPrefix("-") }
        return words.first == "train" || (words.first == "bench" && words.dropFirst().first?.hasPrefix("train") == true)
    }

    static func keepFreedMemory() {
        _ = mallopt(arenaMax, 1)
        _ = mallopt(mmapThreshold, 32 << 20)
        _ = mallopt(trimThreshold, Int32.max)
    }
}

/// The process's entry: the allocator set for training commands before anything else runs, then the CLI.
@main
enum Entry {
    static func main() async {
        if Allocator.trains(CommandLine.arguments) { Allocator.keepFreedMemory() }
        await Mass.main()
    }
}

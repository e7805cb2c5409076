// zlib (Debian zlib1g-dev), for the compression ratio Whisper's temperature fallback tests.
#include <zlib.h>

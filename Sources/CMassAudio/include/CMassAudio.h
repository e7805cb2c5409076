#ifndef CMASS_AUDIO_H
#define CMASS_AUDIO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Decoded audio: mono float32 samples (channels averaged), at the file's own sample rate.
typedef struct {
    float *samples;
    long long frames;
    int sample_rate;
    int channels;
    /// libsndfile's major format and subtype (SF_FORMAT_*), for messages.
    int format;
    char error[256];
} cmass_audio;

/// Decodes a WAV, FLAC, OGG/Vorbis, Opus or MP3 file held in memory with libsndfile. Files longer than
/// `max_seconds` are refused from their header. Returns 0, or -1 with `out->error` set.
int cmass_decode_audio(const unsigned char *data, size_t size, double max_seconds, cmass_audio *out);
void cmass_audio_free(cmass_audio *audio);

/// Decodes as faster-whisper's `decode_audio` does: the file's samples in the format FFmpeg's decoder gives them
/// (16-bit PCM as s16, 24/32-bit as s32, 8-bit as u8, everything else as float), through libswresample to 16-bit
/// mono at `out_rate` (its default rematrix and resampler), returned as floats (s16 / 32768). Returns 0, or -1 with
/// `out->error` set.
int cmass_decode_audio_swr(const unsigned char *data, size_t size, double max_seconds, int out_rate,
                           cmass_audio *out);

#ifdef __cplusplus
}
#endif
#endif

// Audio decoding with libsndfile from memory (its virtual I/O): downmixed to mono float32, or converted to 16-bit
// mono at 16 kHz by libswresample as faster-whisper (PyAV, FFmpeg) does.
#include "CMassAudio.h"

#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *data;
    sf_count_t size, position;
} memory_file;

static sf_count_t vio_length(void *user) { return ((memory_file *)user)->size; }

static sf_count_t vio_seek(sf_count_t offset, int whence, void *user) {
    memory_file *f = user;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f->position : f->size;
    sf_count_t target = base + offset;
    if (target < 0 || target > f->size) return -1;
    f->position = target;
    return f->position;
}

static sf_count_t vio_read(void *ptr, sf_count_t count, void *user) {
    memory_file *f = user;
    sf_count_t n = count < f->size - f->position ? count : f->size - f->position;
    if (n <= 0) return 0;
    memcpy(ptr, f->data + f->position, (size_t)n);
    f->position += n;
    return n;
}

static sf_count_t vio_write(const void *ptr, sf_count_t count, void *user) { (void)ptr, (void)count, (void)user; return 0; }
static sf_count_t vio_tell(void *user) { return ((memory_file *)user)->position; }

void cmass_audio_free(cmass_audio *audio) {
    free(audio->samples);
    audio->samples = NULL;
}

/// Opens the file and checks its header: the channel count, the rate, a data chunk running past the end, the
/// length limit. Returns the open file, or NULL with `out->error` set.
static SNDFILE *open_checked(memory_file *file, SF_INFO *info, double max_seconds, cmass_audio *out) {
    SF_VIRTUAL_IO io = {vio_length, vio_seek, vio_read, vio_write, vio_tell};
    memset(info, 0, sizeof *info);
    SNDFILE *sf = sf_open_virtual(&io, SFM_READ, info, file);
    if (!sf) {
        snprintf(out->error, sizeof out->error, "not a readable audio file (%s)", sf_strerror(NULL));
        return NULL;
    }
    out->sample_rate = info->samplerate;
    out->channels = info->channels;
    out->format = info->format;
    if (info->samplerate <= 0 || info->channels <= 0) {
        snprintf(out->error, sizeof out->error, "the file declares %d channels at %d Hz", info->channels, info->samplerate);
        sf_close(sf);
        return NULL;
    }
    // libsndfile shortens a WAV whose data chunk runs past the end of the file and only notes it in its log
    // ("data : 64000 (should be 31978)"); such a file is truncated. Unknown sizes (0 or 0xFFFFFFFF) are fine.
    char log[8192];
    sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log);
    for (char *line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        unsigned long long declared = 0, actual = 0;
        if (sscanf(line, "data : %llu (should be %llu)", &declared, &actual) == 2 && declared > actual &&
            declared != 0xFFFFFFFFull) {
            snprintf(out->error, sizeof out->error, "the file is truncated: its data chunk declares %llu bytes, %llu are there",
                     declared, actual);
            sf_close(sf);
            return NULL;
        }
    }
    if (info->frames > 0 && (double)info->frames / info->samplerate > max_seconds) {
        snprintf(out->error, sizeof out->error, "the audio is %.1f s long, over the limit of %.0f s",
                 (double)info->frames / info->samplerate, max_seconds);
        sf_close(sf);
        return NULL;
    }
    return sf;
}

/// Reads every frame, interleaved, as floats or (`as_int`) as libsndfile's full-scale int32. Some formats (MP3,
/// OGG streams) do not know their length up front: blocks are read until the end, bounded by the limit. Closes the
/// file. Returns the buffer (free it) and its frame count, or NULL with `out->error` set.
static void *read_interleaved(SNDFILE *sf, const SF_INFO *info, double max_seconds, int as_int, long long *count,
                              cmass_audio *out) {
    size_t unit = as_int ? sizeof(int) : sizeof(float);
    long long limit = (long long)(max_seconds * info->samplerate) + 1;
    long long capacity = info->frames > 0 ? info->frames : 1 << 16;
    char *buffer = malloc(unit * (size_t)capacity * (size_t)info->channels);
    if (!buffer) {
        snprintf(out->error, sizeof out->error, "out of memory");
        sf_close(sf);
        return NULL;
    }
    long long frames = 0;
    for (;;) {
        if (frames + 4096 > capacity) {
            while (frames + 4096 > capacity) capacity *= 2;
            char *grown = realloc(buffer, unit * (size_t)capacity * (size_t)info->channels);
            if (!grown) {
                snprintf(out->error, sizeof out->error, "out of memory");
                free(buffer);
                sf_close(sf);
                return NULL;
            }
            buffer = grown;
        }
        char *at = buffer + unit * (size_t)frames * (size_t)info->channels;
        sf_count_t n = as_int ? sf_readf_int(sf, (int *)at, 4096) : sf_readf_float(sf, (float *)at, 4096);
        if (n <= 0) break;
        frames += n;
        if (frames > limit) {
            snprintf(out->error, sizeof out->error, "the audio is over the limit of %.0f s", max_seconds);
            free(buffer);
            sf_close(sf);
            return NULL;
        }
    }
    int status = sf_error(sf);
    sf_close(sf);
    if (status != SF_ERR_NO_ERROR) {
        snprintf(out->error, sizeof out->error, "the audio data is corrupt (%s)", sf_error_number(status));
        free(buffer);
        return NULL;
    }
    if (info->frames > 0 && frames < info->frames) {
        snprintf(out->error, sizeof out->error, "the file is truncated: %lld of %lld frames", frames,
                 (long long)info->frames);
        free(buffer);
        return NULL;
    }
    *count = frames;
    return buffer;
}

int cmass_decode_audio(const unsigned char *data, size_t size, double max_seconds, cmass_audio *out) {
    memset(out, 0, sizeof *out);
    memory_file file = {data, (sf_count_t)size, 0};
    SF_INFO info;
    SNDFILE *sf = open_checked(&file, &info, max_seconds, out);
    if (!sf) return -1;
    long long frames = 0;
    float *interleaved = read_interleaved(sf, &info, max_seconds, 0, &frames, out);
    if (!interleaved) return -1;
    // Averaged to mono in place: frame i's mean lands at i, behind the frames still to be read.
    for (long long i = 0; i < frames; i++) {
        float sum = 0;
        for (int c = 0; c < info.channels; c++) sum += interleaved[i * info.channels + c];
        interleaved[i] = sum / info.channels;
    }
    out->samples = interleaved;
    out->frames = frames;
    return 0;
}

int cmass_decode_audio_swr(const unsigned char *data, size_t size, double max_seconds, int out_rate,
                           cmass_audio *out) {
    memset(out, 0, sizeof *out);
    memory_file file = {data, (sf_count_t)size, 0};
    SF_INFO info;
    SNDFILE *sf = open_checked(&file, &info, max_seconds, out);
    if (!sf) return -1;
    // The sample format FFmpeg's decoders give: integer PCM as integers, everything else (float, MP3, Vorbis,
    // Opus) as float.
    int subtype = info.format & SF_FORMAT_SUBMASK;
    enum AVSampleFormat in_format = AV_SAMPLE_FMT_FLT;
    if (subtype == SF_FORMAT_PCM_16) in_format = AV_SAMPLE_FMT_S16;
    else if (subtype == SF_FORMAT_PCM_24 || subtype == SF_FORMAT_PCM_32) in_format = AV_SAMPLE_FMT_S32;
    else if (subtype == SF_FORMAT_PCM_U8 || subtype == SF_FORMAT_PCM_S8) in_format = AV_SAMPLE_FMT_U8;
    int as_int = in_format != AV_SAMPLE_FMT_FLT;
    long long frames = 0;
    void *samples = read_interleaved(sf, &info, max_seconds, as_int, &frames, out);
    if (!samples) return -1;
    // libsndfile's int32 is full scale: 16-bit x << 16, 8-bit x << 24; narrow in place.
    long long total = frames * info.channels;
    if (in_format == AV_SAMPLE_FMT_S16) {
        int16_t *narrow = samples;
        for (long long i = 0; i < total; i++) narrow[i] = (int16_t)(((int *)samples)[i] >> 16);
    } else if (in_format == AV_SAMPLE_FMT_U8) {
        uint8_t *narrow = samples;
        for (long long i = 0; i < total; i++) narrow[i] = (uint8_t)((((int *)samples)[i] >> 24) + 128);
    }
    AVChannelLayout in_layout, out_layout = AV_CHANNEL_LAYOUT_MONO;
    av_channel_layout_default(&in_layout, info.channels);
    SwrContext *swr = NULL;
    // A rate change is computed in float whatever the formats, as FFmpeg 8 (PyAV 18, what faster-whisper runs on)
    // does for 16-bit in and out; Debian's FFmpeg 5.1 would pick its int16 resampler, 2-3 steps away. A downmix
    // alone stays in int16 in both.
    if (swr_alloc_set_opts2(&swr, &out_layout, AV_SAMPLE_FMT_S16, out_rate, &in_layout, in_format, info.samplerate, 0,
                            NULL) < 0 ||
        (info.samplerate != out_rate &&
         av_opt_set_sample_fmt(swr, "internal_sample_fmt", AV_SAMPLE_FMT_FLTP, 0) < 0) ||
        swr_init(swr) < 0) {
        snprintf(out->error, sizeof out->error, "libswresample cannot convert %d channels at %d Hz", info.channels,
                 info.samplerate);
        swr_free(&swr);
        free(samples);
        return -1;
    }
    long long capacity = (long long)((double)frames * out_rate / info.samplerate) + 4096;
    int16_t *converted = malloc(sizeof(int16_t) * (size_t)capacity);
    out->samples = malloc(sizeof(float) * (size_t)capacity);
    long long produced = 0;
    if (converted && out->samples) {
        const uint8_t *in[1] = {samples};
        for (int pass = 0; pass < 64; pass++) {
            uint8_t *at[1] = {(uint8_t *)(converted + produced)};
            // The first pass converts everything; the next ones drain what the filter still holds.
            int n = swr_convert(swr, at, (int)(capacity - produced), pass == 0 ? in : NULL, pass == 0 ? (int)frames : 0);
            if (n < 0) {
                produced = -1;
                break;
            }
            produced += n;
            if (pass > 0 && n == 0) break;
        }
    }
    swr_free(&swr);
    free(samples);
    if (!converted || !out->samples || produced < 0) {
        snprintf(out->error, sizeof out->error, produced < 0 ? "libswresample failed" : "out of memory");
        free(converted);
        cmass_audio_free(out);
        return -1;
    }
    for (long long i = 0; i < produced; i++) out->samples[i] = converted[i] / 32768.0f;
    free(converted);
    out->frames = produced;
    out->sample_rate = out_rate;
    out->channels = 1;
    return 0;
}

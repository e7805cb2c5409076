// Audio decoding with libsndfile from memory (its virtual I/O), downmixed to mono float32.
#include "CMassAudio.h"

#include <sndfile.h>
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

int cmass_decode_audio(const unsigned char *data, size_t size, double max_seconds, cmass_audio *out) {
    memset(out, 0, sizeof *out);
    memory_file file = {data, (sf_count_t)size, 0};
    SF_VIRTUAL_IO io = {vio_length, vio_seek, vio_read, vio_write, vio_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_virtual(&io, SFM_READ, &info, &file);
    if (!sf) {
        snprintf(out->error, sizeof out->error, "not a readable audio file (%s)", sf_strerror(NULL));
        return -1;
    }
    out->sample_rate = info.samplerate;
    out->channels = info.channels;
    out->format = info.format;
    if (info.samplerate <= 0 || info.channels <= 0) {
        snprintf(out->error, sizeof out->error, "the file declares %d channels at %d Hz", info.channels, info.samplerate);
        sf_close(sf);
        return -1;
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
            return -1;
        }
    }
    if (info.frames > 0 && (double)info.frames / info.samplerate > max_seconds) {
        snprintf(out->error, sizeof out->error, "the audio is %.1f s long, over the limit of %.0f s",
                 (double)info.frames / info.samplerate, max_seconds);
        sf_close(sf);
        return -1;
    }
    // Some formats (MP3, OGG streams) do not know their length up front: read in blocks, bounded by the limit.
    long long limit = (long long)(max_seconds * info.samplerate) + 1;
    long long capacity = info.frames > 0 ? info.frames : 1 << 16;
    float *interleaved = malloc(sizeof(float) * 4096 * info.channels);
    out->samples = malloc(sizeof(float) * capacity);
    if (!interleaved || !out->samples) {
        free(interleaved);
        snprintf(out->error, sizeof out->error, "out of memory");
        sf_close(sf);
        return -1;
    }
    long long frames = 0;
    for (;;) {
        sf_count_t n = sf_readf_float(sf, interleaved, 4096);
        if (n <= 0) break;
        if (frames + n > limit) {
            snprintf(out->error, sizeof out->error, "the audio is over the limit of %.0f s", max_seconds);
            free(interleaved);
            cmass_audio_free(out);
            sf_close(sf);
            return -1;
        }
        if (frames + n > capacity) {
            while (frames + n > capacity) capacity *= 2;
            float *grown = realloc(out->samples, sizeof(float) * capacity);
            if (!grown) {
                snprintf(out->error, sizeof out->error, "out of memory");
                free(interleaved);
                cmass_audio_free(out);
                sf_close(sf);
                return -1;
            }
            out->samples = grown;
        }
        for (sf_count_t i = 0; i < n; i++) {
            float sum = 0;
            for (int c = 0; c < info.channels; c++) sum += interleaved[i * info.channels + c];
            out->samples[frames + i] = sum / info.channels;
        }
        frames += n;
    }
    int status = sf_error(sf);
    free(interleaved);
    if (status != SF_ERR_NO_ERROR) {
        snprintf(out->error, sizeof out->error, "the audio data is corrupt (%s)", sf_error_number(status));
        cmass_audio_free(out);
        sf_close(sf);
        return -1;
    }
    if (info.frames > 0 && frames < info.frames) {
        snprintf(out->error, sizeof out->error, "the file is truncated: %lld of %lld frames", frames,
                 (long long)info.frames);
        cmass_audio_free(out);
        sf_close(sf);
        return -1;
    }
    sf_close(sf);
    out->frames = frames;
    return 0;
}

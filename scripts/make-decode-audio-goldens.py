#!/usr/bin/env python3
"""Offline: goldens for Mass's libswresample decoding against faster_whisper.decode_audio (PyAV/FFmpeg). Writes 0.3 s
test files into Tests/MassAudioTests/Decoding/: WAV (16-bit), FLAC (16-bit) and MP3 (libmp3lame, 64 kb/s), mono
and stereo (a different speaker on each channel: jfk.flac left, clip2_gb_female.wav right), at 8, 16, 22.05, 44.1
and 48 kHz; then records what decode_audio(file) gives for each (16 kHz mono, 16-bit) as little-endian int16,
base64, in Tests/MassAudioTests/Decoding/goldens.json. Run once with the peer venv:

    ~/.cache/mass-peers/bin/python scripts/make-decode-audio-goldens.py
"""
import base64
import json
import wave
from pathlib import Path

import av
import numpy as np
import faster_whisper
from faster_whisper import decode_audio

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT.parent / "shared" / "fixtures" / "audio"
OUT = ROOT / "Tests" / "MassAudioTests" / "Decoding"
RATES = [8000, 16000, 22050, 44100, 48000]
SECONDS = 0.3


def source(rate):
    """Two 16 kHz speech signals (from 1.0 s in) resampled to `rate` with PyAV, as int16 [2, n]."""
    channels = []
    for name in ["jfk.flac", "clip2_gb_female.wav"]:
        x = decode_audio(str(AUDIO / name), sampling_rate=rate)
        start = rate
        channels.append(np.round(x[start:start + int(SECONDS * rate)] * 32767).astype(np.int16))
    return np.stack(channels)


def write_wav(path, pcm, rate):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.T.copy().astype("<i2").tobytes())


def write_encoded(path, pcm, rate, codec):
    layout = "mono" if pcm.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if codec == "libmp3lame":
            stream.bit_rate = 64000
        frame_format = "s16p" if codec == "libmp3lame" else "s16"
        data = pcm if frame_format == "s16p" else pcm.T.copy().reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=frame_format, layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    goldens = {"generator": f"faster-whisper {faster_whisper.__version__} decode_audio, PyAV {av.__version__}",
               "files": []}
    for rate in RATES:
        both = source(rate)
        for channels in [1, 2]:
            pcm = both[:channels]
            stem = f"{rate}-{'mono' if channels == 1 else 'stereo'}"
            files = [(OUT / f"{stem}.wav", None), (OUT / f"{stem}.flac", "flac"), (OUT / f"{stem}.mp3", "libmp3lame")]
            for path, codec in files:
                if codec is None:
                    write_wav(path, pcm, rate)
                else:
                    write_encoded(path, pcm, rate, codec)
                samples = decode_audio(str(path), sampling_rate=16000)
                s16 = np.round(samples * 32768).astype("<i2")
                goldens["files"].append({"file": path.name, "rate": rate, "channels": channels,
                                         "samples": len(s16), "s16": base64.b64encode(s16.tobytes()).decode()})
    (OUT / "goldens.json").write_text(json.dumps(goldens, indent=1) + "\n")
    print(len(goldens["files"]), "files")


if __name__ == "__main__":
    main()

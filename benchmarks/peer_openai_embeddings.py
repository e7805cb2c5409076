"""A measurement-only provider: an OpenAI-compatible POST /v1/embeddings served by sentence-transformers.

Used by benchmarks/calibration.sh as "the service" a Mass service-type model wraps (another embedding model than
Mass's local one). Never a dependency of Mass or its tests.

    python peer_openai_embeddings.py MODEL_FOLDER PORT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sentence_transformers import SentenceTransformer

folder, port = sys.argv[1], int(sys.argv[2])
model = SentenceTransformer(folder, device="cpu")
name = folder.rstrip("/").split("/")[-1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path != "/v1/embeddings":
            return self.answer(404, {"error": {"message": "not found"}})
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
        vectors = model.encode(texts, normalize_embeddings=True)
        tokens = sum(len(model.tokenizer(t)["input_ids"]) for t in texts)
        self.answer(200, {
            "object": "list", "model": name,
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

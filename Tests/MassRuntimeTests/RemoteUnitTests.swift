import Foundation
import MassModels
import MassRegistry
import MassRuntime
import MassTesting
import NIOCore
import Testing

/// Service-type models without a network: the breaker's state machine, retry timing, the `remote` block of
/// mass.json, and every way a provider's answer can be wrong.
@Suite struct CircuitBreakerTests {
    var policy: RemoteConfig.Breaker {
        var p = RemoteConfig.Breaker()
        p.windowMilliseconds = 10_000
        p.minimumCalls = 10
        p.errorRate = 0.5
        p.consecutiveFailures = 5
        p.openMilliseconds = 2_000
        p.halfOpenProbes = 1
        return p
    }

    @Test func opensOnConsecutiveFailuresThenProbesAndCloses() {
        var b = CircuitBreaker(policy: policy)
        for i in 0..<4 {
            #expect(b.admit(now: Double(i) * 0.1) == .call)
            b.record(success: false, now: Double(i) * 0.1)
            #expect(b.state == .closed)
        }
        #expect(b.admit(now: 0.5) == .call)
        b.record(success: false, now: 0.5)
        #expect(b.state == .open(until: 2.5))
        #expect(b.opened == 1)
        // Open: refused, saying for how long.
        #expect(b.admit(now: 1.5) == .refused(retryIn: 1.0))
        // After open_ms: one probe at a time.
        #expect(b.admit(now: 2.6) == .probe)
        #expect(b.admit(now: 2.6) == .refused(retryIn: 0))
        // A failed probe reopens it.
        b.record(success: false, probe: true, now: 2.7)
        #expect(b.state == .open(until: 4.7))
        #expect(b.opened == 2)
        #expect(b.admit(now: 4.8) == .probe)
        // A late failure of a call admitted before does not decide the half-open state.
        b.record(success: false, now: 4.85)
        #expect(b.state == .halfOpen(probes: 1))
        b.record(success: true, probe: true, now: 4.9)
        #expect(b.state == .closed)
        #expect(b.admit(now: 5) == .call)
    }

    @Test func opensOnTheErrorRateOnlyWithEnoughCalls() {
        var b = CircuitBreaker(policy: policy)
        // Alternating outcomes: never 5 failures in a row; 9 calls are under min_calls.
        for i in 0..<9 {
            b.record(success: i % 2 == 0, now: 1)
        }
        #expect(b.state == .closed)
        // The tenth call, a failure: 5 of 10 failed (50 %).
        b.record(success: false, now: 1)
        #expect(b.state == .open(until: 3))
    }

    @Test func oldCallsLeaveTheWindow() {
        var b = CircuitBreaker(policy: policy)
        for _ in 0..<8 { b.record(success: false, now: 0) }  // opens on the 5th in a row
        #expect(b.opened == 1)
        var c = CircuitBreaker(policy: policy)
        for i in 0..<12 { c.record(success: i % 3 != 0, now: 0) }  // 4 of 12 failed
        // 20 s later the window is empty again: 6 failures of 10 calls counts only these.
        for i in 0..<10 { c.record(success: i >= 6 || i % 2 == 0, now: 20) }
        #expect(c.state == .closed)  // 3 failures of 10, not in a row
        for _ in 0..<4 { c.record(success: false, now: 20.5) }  // 7 of 14 failed: 50 %
        #expect(c.state == .open(until: 22.5))
    }

    @Test func anAbandonedProbeLetsAnotherThrough() {
        var b = CircuitBreaker(policy: policy)
        for _ in 0..<5 { b.record(success: false, now: 0) }
        #expect(b.admit(now: 3) == .probe)
        b.abandon(probe: true)
        #expect(b.admit(now: 3) == .probe)
    }
}

@Suite struct RetryTimingTests {
    @Test func backoffIsCappedFullJitter() {
        let policy = RemoteConfig.Retry()  // 50 ms base, 2 s cap
        #expect(RetryTiming.backoff(retry: 1, policy: policy, unit: 0.999) < 0.05)
        #expect(abs(RetryTiming.backoff(retry: 3, policy: policy, unit: 0.5) - 0.1) < 1e-9)
        #expect(abs(RetryTiming.backoff(retry: 10, policy: policy, unit: 1) - 2.0) < 1e-9)
        #expect(RetryTiming.backoff(retry: 2, policy: policy, unit: 0) == 0)
    }

    @Test func retryAfterSecondsAndDates() {
        #expect(RetryTiming.retryAfter("3") == 3)
        #expect(RetryTiming.retryAfter(" 0 ") == 0)
        #expect(RetryTiming.retryAfter("-1") == nil)
        #expect(RetryTiming.retryAfter("soon") == nil)
        #expect(RetryTiming.retryAfter(nil) == nil)
        let now = Date(timeIntervalSince1970: 1_700_000_000)  // Tue, 14 Nov 2023 22:13:20 GMT
        #expect(RetryTiming.retryAfter("Tue, 14 Nov 2023 22:13:30 GMT", now: now) == 10)
        #expect(RetryTiming.retryAfter("Tue, 14 Nov 2023 22:13:00 GMT", now: now) == 0)
    }
}

@Suite struct RemoteConfigTests {
    func parse(_ json: String) throws -> ModelConfig { try ModelConfig.parse(Data(json.utf8), file: "m/mass.json") }

    func failure(_ json: String) -> String {
        caught(RuntimeError.self) { _ = try parse(json) }?.message ?? "(no error)"
    }

    @Test func everyKey() throws {
        let config = try parse(
            #"""
            {"task": "text-embedding", "remote": {"api": "openai-embeddings", "url": "http://10.0.0.1:8080/base",
             "model": "text-embedding-3-small", "api_key_env": "OPENAI_API_KEY", "connect_timeout_ms": 500,
             "call_timeout_ms": 3000, "max_in_flight": 8, "hedge_after_ms": 250, "fallback": ["b", "local"],
             "probe_interval_ms": 1000, "dimension": 384, "max_response_bytes": 1048576,
             "retry": {"attempts": 4, "base_delay_ms": 10, "max_delay_ms": 100, "max_retry_after_ms": 2000},
             "breaker": {"window_ms": 5000, "min_calls": 4, "error_rate": 0.25, "consecutive_failures": 3,
                         "open_ms": 1000, "half_open_probes": 2}}}
            """#)
        let r = try #require(config.remote)
        #expect(r.api == .openAIEmbeddings && r.url.absoluteString == "http://10.0.0.1:8080/base")
        #expect(r.model == "text-embedding-3-small" && r.credential == .environment("OPENAI_API_KEY"))
        #expect(r.connectTimeoutMilliseconds == 500 && r.callTimeoutMilliseconds == 3000 && r.maxInFlight == 8)
        #expect(r.hedgeAfterMilliseconds == 250 && r.fallback == ["b", "local"] && r.probeIntervalMilliseconds == 1000)
        #expect(r.dimension == 384 && r.maxResponseBytes == 1_048_576)
        #expect(r.retry.attempts == 4 && r.retry.baseDelayMilliseconds == 10 && r.retry.maxDelayMilliseconds == 100)
        #expect(r.retry.maxRetryAfterMilliseconds == 2000)
        #expect(r.breaker.windowMilliseconds == 5000 && r.breaker.minimumCalls == 4 && r.breaker.errorRate == 0.25)
        #expect(r.breaker.consecutiveFailures == 3 && r.breaker.openMilliseconds == 1000)
        #expect(r.breaker.halfOpenProbes == 2)
        let minimal = try #require(
            try parse(#"{"task": "rerank", "remote": {"api": "tei-rerank", "url": "https://h"}}"#).remote)
        #expect(minimal.credential == .none && minimal.hedgeAfterMilliseconds == nil && minimal.retry.attempts == 3)
        #expect(
            try parse(#"{"task": "rerank", "remote": {"api": "kserve-v2", "url": "http://h", "api_key_file": "key"}}"#)
                .remote?.credential == .file("key"))
    }

    @Test func badBlocksNameTheKey() throws {
        #expect(failure(#"{"task": "text-embedding", "remote": {"url": "http://h"}}"#).contains("'remote.api'"))
        #expect(
            failure(#"{"task": "text-embedding", "remote": {"api": "grpc", "url": "http://h"}}"#)
                .contains("'remote.api' must be one of openai-embeddings"))
        #expect(
            failure(#"{"task": "speech-recognition", "remote": {"api": "tei-rerank", "url": "http://h"}}"#)
                .contains("cannot serve task 'speech-recognition'"))
        #expect(failure(#"{"task": "rerank", "remote": {"api": "tei-rerank"}}"#).contains("'remote.url'"))
        #expect(
            failure(#"{"task": "rerank", "remote": {"api": "tei-rerank", "url": "ftp://h"}}"#)
                .contains("an http:// or https:// URL"))
        #expect(
            failure(#"{"task": "rerank", "remote": {"api": "tei-rerank", "url": "http://user:pw@h"}}"#)
                .contains("without credentials"))
        #expect(
            failure(
                #"{"task": "rerank", "remote": {"api": "tei-rerank", "url": "http://h", "api_key_env": "A", "api_key_file": "f"}}"#
            ).contains("at most one of"))
        #expect(
            failure(#"{"task": "rerank", "remote": {"api": "tei-rerank", "url": "http://h", "retries": 3}}"#)
                .contains("unknown key 'remote.retries'"))
        #expect(
            failure(
                #"{"task": "rerank", "remote": {"api": "tei-rerank", "url": "http://h", "breaker": {"error_rate": 2}}}"#
            )
            .contains("'remote.breaker.error_rate' must be a number from 0.01 to 1"))
        #expect(
            failure(#"{"task": "rerank", "remote": {"api": "tei-rerank", "url": "http://h", "fallback": "x"}}"#)
                .contains("'remote.fallback' must be an array of strings"))
        #expect(
            failure(#"{"task": "rerank", "architecture": "bert", "remote": {"api": "tei-rerank", "url": "http://h"}}"#)
                .contains("'remote' excludes 'architecture', 'precision' and 'adapter'"))
        #expect(
            failure(
                #"{"task": "text-embedding", "remote": {"api": "openai-embeddings", "url": "http://h", "record": {"sample_rate": 1}}}"#
            )
            .contains("needs a 'candidate'"))
        #expect(
            failure(
                #"{"task": "text-embedding", "remote": {"api": "openai-embeddings", "url": "http://h", "record": {"candidate": "l", "sample_rate": 2}}}"#
            )
            .contains("'remote.record.sample_rate' must be a number from 0 to 1"))
        #expect(
            failure(#"{"task": "rerank", "adapter": "adapter.safetensors"}"#).contains(
                "for text-embedding and text-classification models"))
        #expect(
            failure(#"{"task": "text-embedding", "adapter": "../x"}"#).contains("a file name in the version folder"))
        #expect(
            try parse(#"{"task": "text-embedding", "adapter": "adapter.safetensors"}"#).adapter == "adapter.safetensors"
        )
    }
}

@Suite struct RemoteWireTests {
    func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    func reason(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let failure as RemoteFailure {
            return failure.reason
        } catch {
            return "other: \(error)"
        }
    }

    @Test func openAIEmbeddingsInInputOrder() throws {
        let answer = buffer(
            #"{"object": "list", "data": [{"index": 1, "embedding": [3, 4]}, {"index": 0, "embedding": [1, 2]}], "usage": {"prompt_tokens": 7, "total_tokens": 7}}"#
        )
        let (vectors, tokens) = try RemoteWire.openAIEmbeddings(answer, count: 2, dimension: nil)
        #expect(vectors == [[1, 2], [3, 4]] && tokens == 7)
        #expect(try RemoteWire.openAIEmbeddings(answer, count: 2, dimension: 2).vectors == [[1, 2], [3, 4]])
    }

    @Test func theScannerReadsWhatJSONAllowsAndRefusesTheRest() throws {
        // Other keys of every kind are passed over; white space, escapes and exponents are read.
        let answer = buffer(
            #" { "object" : "list", "model": "m\u00e9", "extra": {"a": [1, {"b": null}], "c": true, "d": false},"#
                + #" "data": [ {"object": "embedding", "embedding": [ -1.5e-3 , 2E2, 0.125 ], "index": 0} ],"#
                + #" "usage": {"total_tokens": 5, "prompt_tokens": 5} } "#)
        let (vectors, tokens) = try RemoteWire.openAIEmbeddings(answer, count: 1, dimension: 3)
        #expect(vectors == [[-0.0015, 200, 0.125]] && tokens == 5)
        #expect(
            try RemoteWire.openAIEmbeddings(
                buffer(#"{"data": [{"index": 0, "embedding": [1]}]}"#), count: 1, dimension: nil
            ).tokens == nil)
        for bad in [
            #"{"data": [{"index": 0, "embedding": [1]}]"#, #"{"data": [{"index": 0, "embedding": [1,]}]}"#,
            #"{"data": [{"index": 0, "embedding": [1]}]} trailing"#, #"{"data": [{"index": "0", "embedding": [1]}]}"#,
            #"{"data": [{"index": 0.5, "embedding": [1]}]}"#, #"{"data": [{"index": 0, "embedding": [nan]}]}"#,
            #"{"data": [{"index": 0, "embedding": "AAAA"}]}"#, #"{"data": {}}"#, #"{"nodata": []}"#,
            #"{"data": [{"index": 0, "embedding": [1e999]}]}"#, #"{"data": [{"index": 0, "embedding": [0x10]}]}"#,
            #"{"data": [{"index": 0, "embedding": [1]}], "x": tru}"#,
            #"{"data": [{"index": 0, "embedding": [1]}], "x": "unterminated}"#, "", "[]",
        ] {
            #expect(
                reason { _ = try RemoteWire.openAIEmbeddings(buffer(bad), count: 1, dimension: nil) }
                    == "malformed_json", "\(bad)")
        }
    }

    @Test func transcriptionAnswersBecomeTranscripts() throws {
        let verbose = buffer(
            #"{"text": "Hello there. Bye.", "language": "german", "duration": 4.5, "segments": [{"start": 0, "end": 2.5, "text": " Hello there.", "tokens": [1, 2], "avg_logprob": -0.25}, {"start": 2.5, "end": 4.0, "text": " Bye."}], "words": [{"word": "Hello", "start": 0.1, "end": 0.5}, {"word": "there.", "start": 0.6, "end": 1.0}, {"word": "Bye.", "start": 2.6, "end": 3.0}]}"#
        )
        let (transcript, seconds, language) = try RemoteWire.transcription(verbose)
        #expect(transcript.text == "Hello there. Bye." && seconds == 4.5 && language == "german")
        #expect(transcript.segments.map(\.end) == [2.5, 4.0] && transcript.segments[0].tokens == [1, 2])
        #expect(transcript.segments[0].averageLogProbability == -0.25)
        #expect(transcript.segments.map { $0.words.map(\.word) } == [["Hello", "there."], ["Bye."]])
        #expect(
            transcript.srt
                == "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:02,500 --> 00:00:04,000\nBye.\n\n")
        // Text only (a provider without segments): one segment over the audio; language defaults to English.
        let plain = try RemoteWire.transcription(buffer(#"{"text": " Just text. ", "duration": 2}"#))
        #expect(plain.transcript.segments.map(\.end) == [2] && plain.transcript.text == "Just text.")
        #expect(plain.language == "english")
        #expect(try RemoteWire.transcription(buffer(#"{"text": ""}"#)).transcript.segments.isEmpty)
        #expect(reason { _ = try RemoteWire.transcription(buffer("<html>")) } == "malformed_json")
        #expect(reason { _ = try RemoteWire.transcription(buffer(#"{"segments": []}"#)) } == "malformed_json")
        #expect(
            reason {
                _ = try RemoteWire.transcription(
                    buffer(#"{"text": "a", "segments": [{"start": 3, "end": 1, "text": "a"}]}"#))
            } == "bad_times")
        #expect(reason { _ = try RemoteWire.transcription(buffer(#"{"text": "a", "duration": -1}"#)) } == "bad_times")
    }

    @Test func transcriptAgreementIsCorpusWordErrorRate() throws {
        func pair(_ service: String, _ local: String) -> ServicePair {
            ServicePair(
                service: "s", candidate: "c", kind: "transcript", input: "", serviceOutput: [], candidateOutput: [],
                serviceText: service, candidateText: local, serviceMilliseconds: 1, candidateMilliseconds: 1,
                origin: "inputs")
        }
        #expect(TranscriptAgreement([]) == nil)
        // 1 substitution in 4 words, 0 in 2, 1 deletion in 2: 2 edits over 8 words (not the mean of rates, 0.29).
        let a = try #require(
            TranscriptAgreement([
                pair("the cat sat down", "the cat sat town"), pair("Hello, world.", "hello world"),
                pair("yes please", "yes"),
            ]))
        #expect(a.pairs == 3 && a.wordErrorRate == 0.25 && abs(a.same - 1.0 / 3) < 1e-12)
        #expect(Agreement.wordEdits(reference: "a b c", hypothesis: "a x c d") == (2, 3))
    }

    @Test func wrongAnswersAreNamed() {
        #expect(
            reason { _ = try RemoteWire.openAIEmbeddings(buffer("<html>"), count: 1, dimension: nil) }
                == "malformed_json")
        #expect(
            reason {
                _ = try RemoteWire.openAIEmbeddings(buffer(#"{"data": [{"index": 0}]}"#), count: 1, dimension: nil)
            }
                == "malformed_json")
        #expect(
            reason {
                _ = try RemoteWire.openAIEmbeddings(
                    buffer(#"{"data": [{"index": 0, "embedding": [1]}]}"#), count: 2, dimension: nil)
            } == "wrong_count")
        #expect(
            reason {
                _ = try RemoteWire.openAIEmbeddings(
                    buffer(#"{"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [2]}]}"#), count: 2,
                    dimension: nil)
            } == "wrong_count")
        #expect(
            reason {
                _ = try RemoteWire.openAIEmbeddings(
                    buffer(#"{"data": [{"index": 0, "embedding": [1, 2, 3]}]}"#), count: 1, dimension: 384)
            } == "wrong_dimension")
        #expect(
            reason {
                _ = try RemoteWire.openAIEmbeddings(
                    buffer(#"{"data": [{"index": 0, "embedding": [1, 2]}, {"index": 1, "embedding": [1]}]}"#),
                    count: 2, dimension: nil)
            } == "wrong_dimension")
        #expect(
            reason {
                _ = try RemoteWire.openAIEmbeddings(
                    buffer(#"{"data": [{"index": 0, "embedding": []}]}"#), count: 1, dimension: nil)
            }
                == "wrong_dimension")
        #expect(
            reason { _ = try RemoteWire.teiRerank(buffer(#"[{"index": 3, "score": 1}]"#), count: 1) } == "wrong_count")
        #expect(reason { _ = try RemoteWire.teiRerank(buffer(#"{"error": "x"}"#), count: 1) } == "malformed_json")
        #expect(
            reason {
                _ = try RemoteWire.kserveEmbeddings(
                    buffer(
                        #"{"outputs": [{"name": "embedding", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}"#
                    ),
                    count: 2, dimension: nil)
            } == "wrong_count")
        #expect(
            reason {
                _ = try RemoteWire.teiPredict(
                    buffer(
                        #"[[{"label": "a", "score": 1}], [{"label": "a", "score": 1}, {"label": "b", "score": 0}]]"#),
                    count: 2, labels: nil)
            } == "wrong_count")
    }

    @Test func kserveTensorsFlatOrNested() throws {
        let flat = buffer(
            #"{"outputs": [{"name": "embedding", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}"#)
        let nested = buffer(
            #"{"model_name": "m", "outputs": [{"name": "other", "shape": [1], "data": [9]}, {"name": "embedding", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}"#
        )
        #expect(try RemoteWire.kserveEmbeddings(flat, count: 2, dimension: 2) == [[1, 2], [3, 4]])
        #expect(try RemoteWire.kserveEmbeddings(nested, count: 2, dimension: nil) == [[1, 2], [3, 4]])
    }

    @Test func rerankAndPredictInInputAndLabelOrder() throws {
        let ranked = buffer(#"[{"index": 2, "score": 5.5}, {"index": 0, "score": 1.0}, {"index": 1, "score": -2}]"#)
        #expect(try RemoteWire.teiRerank(ranked, count: 3) == [1.0, -2, 5.5])
        let predicted = buffer(
            #"[[{"label": "pos", "score": 2}, {"label": "neg", "score": -1}], [{"label": "neg", "score": 3}, {"label": "pos", "score": 0.5}]]"#
        )
        let (logits, labels) = try RemoteWire.teiPredict(predicted, count: 2, labels: nil)
        #expect(labels == ["neg", "pos"] && logits == [[-1, 2], [3, 0.5]])
        #expect(
            try RemoteWire.teiPredict(predicted, count: 2, labels: ["pos", "neg"]).logits == [[2, -1], [0.5, 3]])
    }
}

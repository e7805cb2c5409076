import MassRuntime
import Testing

/// The shadow's agreement measures on hand-worked cases.
@Suite struct AgreementTests {
    @Test func wordErrorRate() {
        // One substitution and one deletion over six reference words.
        #expect(
            Agreement.wordErrorRate(
                reference: "Turn left at the next junction.", hypothesis: "turn right at the junction")
                == 2.0 / 6.0)
        #expect(Agreement.wordErrorRate(reference: "Yes, stop.", hypothesis: "yes stop") == 0)
        #expect(Agreement.wordErrorRate(reference: "a b", hypothesis: "") == 1)
        #expect(Agreement.wordErrorRate(reference: "", hypothesis: "") == 0)
        #expect(Agreement.wordErrorRate(reference: "a", hypothesis: "a b c") == 2)
    }

    @Test func rankAndVectors() {
        #expect(Agreement.kendall([3, 2, 1], [30, 20, 10]) == 1)
        #expect(Agreement.kendall([3, 2, 1], [1, 2, 3]) == -1)
        #expect(Agreement.kendall([3, 2, 1], [3, 1, 2]) == 1.0 / 3.0)
        #expect(Agreement.top1([[0, 1], [1, 0]], [[0, 2], [0, 3]]) == 0.5)
        #expect(abs(Agreement.cosine([[1, 0]], [[1, 1]]) - 0.5.squareRoot()) < 1e-12)
        #expect(Agreement.cosine([[1, 2, 3]], [[2, 4, 6]]) > 1 - 1e-12)
    }
}

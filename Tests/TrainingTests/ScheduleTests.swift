import Training
import XCTest

final class ScheduleTests: XCTestCase {
    private let paper = LearningRateSchedule.noam(dModel: 512, warmup: 4000, factor: 1)

    /// The paper's numbers: 512^-0.5 * 4000^-0.5 = 6.98771e-4 at the peak, 512^-0.5 * 4000^-1.5 =
    /// 1.746928e-7 at step 1, half the peak at 4 * warmup (inverse square root).
    func testPaperValues() {
        XCTAssertEqual(paper.rate(step: 4000), 6.987_712e-4, accuracy: 1e-10)
        XCTAssertEqual(paper.rate(step: 1), 1.746_928e-7, accuracy: 1e-13)
        XCTAssertEqual(paper.rate(step: 2), 2 * 1.746_928e-7, accuracy: 1e-13)
        XCTAssertEqual(paper.rate(step: 8000), 4.941_059e-4, accuracy: 1e-10)
        XCTAssertEqual(paper.exactRate(step: 16000), paper.exactRate(step: 4000) / 2, accuracy: 1e-15)
        XCTAssertEqual(paper.peakRate, 6.987_712_43e-4, accuracy: 1e-12)
        XCTAssertEqual(paper.rate(step: 0), paper.rate(step: 1))
    }

    func testFactorScalesLinearly() {
        let doubled = LearningRateSchedule.noam(dModel: 512, warmup: 4000, factor: 2)
        for step in [1, 100, 4000, 9999] {
            XCTAssertEqual(Double(doubled.rate(step: step)), 2 * Double(paper.rate(step: step)), accuracy: 1e-12)
        }
    }

    func testNoamRisesThenFalls() {
        var previous: Float = 0
        for step in 1...4000 {
            let r = paper.rate(step: step)
            XCTAssertGreaterThan(r, previous, "step \(step)")
            previous = r
        }
        for step in 4001...12000 {
            let r = paper.rate(step: step)
            XCTAssertLessThan(r, previous, "step \(step)")
            previous = r
        }
    }

    /// Linear warmup to the Noam peak, half a cosine down to 10% of it, then constant.
    func testWarmupCosineKnownPoints() {
        let schedule = LearningRateSchedule.warmupCosine(dModel: 512, warmup: 4000, factor: 1, totalSteps: 14000)
        let peak = paper.exactRate(step: 4000)
        XCTAssertEqual(schedule.peakRate, peak, accuracy: 1e-15)
        XCTAssertEqual(schedule.exactRate(step: 4000), peak, accuracy: 1e-15)
        XCTAssertEqual(schedule.exactRate(step: 2000), peak / 2, accuracy: 1e-15)
        XCTAssertEqual(schedule.exactRate(step: 1), peak / 4000, accuracy: 1e-15)
        // Halfway through the decay the cosine term is 1/2: 0.1 + 0.9 * 0.5 = 0.55 of the peak.
        XCTAssertEqual(schedule.exactRate(step: 9000), 0.55 * peak, accuracy: 1e-15)
        XCTAssertEqual(schedule.exactRate(step: 14000), 0.1 * peak, accuracy: 1e-15)
        XCTAssertEqual(schedule.exactRate(step: 20000), 0.1 * peak, accuracy: 1e-15)
        var previous = peak
        for step in 4001...14000 {
            let r = schedule.exactRate(step: step)
            XCTAssertLessThan(r, previous, "step \(step)")
            previous = r
        }
    }
}

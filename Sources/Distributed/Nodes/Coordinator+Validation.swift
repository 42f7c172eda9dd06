import Foundation
import Training

/// One validation being computed by the workers: which unit each rank still owes, and the
/// results taken so far.
struct ValidationRound {
    let step: Int
    let work: ValidationWork
    let translating: Bool
    var parts: [ValidationPart?]
    /// Units sent to each rank and not yet answered.
    var owed: [Int: Set<Int>] = [:]
    /// Every unit ever sent to each rank (an answer to an earlier assignment still counts).
    var assigned: [Int: Set<Int>] = [:]

    var isComplete: Bool { !parts.contains { $0 == nil } }
    /// Units neither answered nor owed by a rank.
    var unowned: [Int] {
        let owedAnywhere = owed.values.reduce(into: Set<Int>()) { $0.formUnion($1) }
        return parts.indices.filter { parts[$0] == nil && !owedAnywhere.contains($0) }
    }
}

/// Data-parallel validation: the workers compute the units of a validation (loss chunks and
/// scored-translation batches, `ValidationWork`) with the step's weights, which they have just
/// received, and the coordinator combines the results in unit order, so the figures are those
/// of a single-process validation bit for bit. A lost worker's units go to the others, or are
/// computed here when no worker is left.
extension Coordinator {
    /// The results of every unit of `work`, in unit order.
    func validateOnWorkers(_ work: ValidationWork, step: Int) async throws -> [ValidationPart] {
        // Float16 replicas validate with rounded weights: only the master copy gives the bits a
        // single-process validation gives, so then the coordinator validates alone.
        guard weightType == .float32, work.unitCount > 0, !activeRanks.isEmpty else {
            validationUnitsByRank[-1, default: 0] += work.unitCount
            return try work.computeAll(model: session.model)
        }
        let translating = !work.translationBatches.isEmpty
        validation = ValidationRound(
            step: step, work: work, translating: translating,
            parts: [ValidationPart?](repeating: nil, count: work.unitCount))
        defer { validation = nil }
        var deadline = now() + options.stepTimeout
        while let round = validation, !round.isComplete {
            if let failure { throw CoordinatorError.transport(failure) }
            // A rank that is gone owes nothing: its units are handed out again.
            for rank in round.owed.keys where peer(rank: rank) == nil { validation?.owed[rank] = nil }
            let unowned = validation?.unowned ?? []
            if !unowned.isEmpty {
                let ranks = activeRanks
                if ranks.isEmpty {
                    say("validation @ \(step): no workers left; computing its \(unowned.count) remaining unit(s) here")
                    for unit in unowned { validation?.parts[unit] = try work.compute(unit: unit, model: session.model) }
                    validationUnitsByRank[-1, default: 0] += unowned.count
                    continue
                }
                assign(unowned, to: ranks, step: step, translating: translating)
                deadline = now() + options.stepTimeout
            }
            if now() > deadline {
                for (rank, units) in validation?.owed ?? [:] where !units.isEmpty {
                    if let id = peer(rank: rank) {
                        drop(
                            id, reason: "no validation result within the step deadline (\(Int(options.stepTimeout)) s)")
                    }
                }
                continue
            }
            await waitForChange(timeout: 0.5)
        }
        return validation?.parts.compactMap { $0 } ?? []
    }

    /// Deals `units` out to `ranks` in turn (unit costs rise along the translation batches, so
    /// dealing balances them better than contiguous runs) and sends each rank its order.
    private func assign(_ units: [Int], to ranks: [Int], step: Int, translating: Bool) {
        var share: [Int: [Int]] = [:]
        for (i, unit) in units.enumerated() { share[ranks[i % ranks.count], default: []].append(unit) }
        for (rank, list) in share {
            guard let id = peer(rank: rank) else { continue }
            validation?.owed[rank, default: []].formUnion(list)
            validation?.assigned[rank, default: []].formUnion(list)
            socket.send(
                .validate(ValidationOrder(step: step, rank: rank, translating: translating, units: list)), to: id)
        }
    }

    /// A unit's result: taken from a ranked peer that was sent that unit of the current
    /// validation, after `ValidationWork.problem` found nothing wrong with it; a second copy is
    /// ignored, anything malformed is a protocol violation.
    func receiveValidationPart(_ m: ValidationPartMessage, from id: PeerID) {
        guard let p = peers[id], let round = validation, m.step == round.step else { return }
        guard m.rank == p.rank else {
            return violation(by: id, "sent a validation result as rank \(m.rank); it is rank \(p.rank)")
        }
        guard round.assigned[p.rank]?.contains(m.unit) == true else {
            return violation(by: id, "sent the result of validation unit \(m.unit), which it was not given")
        }
        guard round.parts[m.unit] == nil else { return }
        if let problem = round.work.problem(with: m.part, unit: m.unit, vocab: session.config.model.vocabSize) {
            return violation(by: id, "sent a bad validation result: \(problem)")
        }
        validation?.parts[m.unit] = m.part
        validation?.owed[p.rank]?.remove(m.unit)
        validationUnitsByRank[p.rank, default: 0] += 1
        wake()
    }
}

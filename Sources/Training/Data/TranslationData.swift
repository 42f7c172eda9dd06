import Foundation
import TensorCore
import TransformerModel

/// The `translation` task: sentence pairs from TSV files, tokenized with the run's BPE tokenizer,
/// bucketed by length into micro-batches of about `batch_tokens` padded tokens.
///
/// The batches are built once (a pure function of the file and the tokenizer); each epoch visits
/// all of them in an order shuffled from `(seed, epoch)`. Global micro-batch `index` is batch
/// `order(epoch)[index % count]` of epoch `index / count`, so the data cursor is one integer:
/// any worker can build any micro-batch, the coordinator shards a step by handing each rank a
/// contiguous range of indices, and a resumed run (with any worker count) continues exactly.
package struct TranslationData: TrainingData {
    package let tokenizer: BPETokenizer
    package let trainCorpus: ParallelCorpus
    package let validCorpus: ParallelCorpus
    /// Tokenized training pairs (source, target without BOS/EOS).
    package let trainPairs: [(source: [Int32], target: [Int32])]
    /// Micro-batches as indices into `trainPairs`.
    package let batches: [[Int]]
    package let validationPairs: [(source: [Int32], target: [Int32])]
    /// The validation pairs' text, aligned with `validationPairs` (for BLEU).
    package let validationText: [(source: String, target: String)]
    package let seed: UInt64
    package let bleuEvery: Int
    package let bleuSample: Int
    package var reportsSequenceAccuracy: Bool { false }
    package var tokenizerHash: String { tokenizer.hash }

    /// Streams of the epoch shuffles, apart from any other use of the seed.
    static let epochStreamBase: UInt64 = 1 << 40

    package init(config: RunConfig) throws {
        guard let train = config.data.train, let valid = config.data.valid, let tokenizerPath = config.data.tokenizer
        else {
            throw TrainingError.unsupported("data.task translation needs data.train, data.valid and data.tokenizer")
        }
        tokenizer = try BPETokenizer(contentsOfFile: tokenizerPath)
        guard tokenizer.vocabSize <= config.model.vocabSize else {
            throw TrainingError.unsupported(
                "the tokenizer \(tokenizerPath) has \(tokenizer.vocabSize) tokens but model.vocab_size is "
                    + "\(config.model.vocabSize); set model.vocab_size to at least \(tokenizer.vocabSize)")
        }
        let maxLen = config.model.maxLen
        var trainCorpus = try ParallelCorpus(path: train)
        var validCorpus = try ParallelCorpus(path: valid)
        let (trainPairs, trainLong) = TranslationData.tokenize(trainCorpus.pairs, tokenizer, maxLen: maxLen)
        let (validPairs, validLong) = TranslationData.tokenize(validCorpus.pairs, tokenizer, maxLen: maxLen)
        if trainLong.count > 0 { trainCorpus.skipped[.tooLong] = trainLong.count }
        if validLong.count > 0 { validCorpus.skipped[.tooLong] = validLong.count }
        guard !trainPairs.isEmpty else {
            throw TrainingError.invalidBatch("\(train) has no usable sentence pairs: \(trainCorpus.report)")
        }
        guard !validPairs.isEmpty else {
            throw TrainingError.invalidBatch("\(valid) has no usable sentence pairs: \(validCorpus.report)")
        }
        self.trainCorpus = trainCorpus
        self.validCorpus = validCorpus
        self.trainPairs = trainPairs.map(\.ids)
        validationPairs = validPairs.map(\.ids)
        validationText = validPairs.map { validCorpus.pairs[$0.line] }
        batches = LengthBuckets.batches(
            lengths: self.trainPairs.map { ($0.source.count, $0.target.count) },
            tokenBudget: config.training.batchTokens)
        seed = config.training.seed
        bleuEvery = config.data.bleuEvery
        bleuSample = config.data.bleuSample
    }

    /// Tokenizes pairs; those with a side longer than the model's positions (the target gets
    /// BOS/EOS) are left out and returned apart.
    static func tokenize(_ pairs: [(source: String, target: String)], _ tokenizer: BPETokenizer, maxLen: Int)
        -> (kept: [(line: Int, ids: (source: [Int32], target: [Int32]))], tooLong: [Int])
    {
        let sources = tokenizer.encode(lines: pairs.map(\.source))
        let targets = tokenizer.encode(lines: pairs.map(\.target))
        var kept: [(line: Int, ids: (source: [Int32], target: [Int32]))] = []
        var tooLong: [Int] = []
        kept.reserveCapacity(pairs.count)
        for i in pairs.indices {
            let p = (source: sources[i], target: targets[i])
            if p.source.isEmpty || p.target.isEmpty || p.source.count > maxLen || p.target.count + 1 > maxLen {
                tooLong.append(i)
            } else {
                kept.append((i, p))
            }
        }
        return (kept, tooLong)
    }

    /// Micro-batches per epoch.
    package var batchesPerEpoch: Int { batches.count }

    /// The batch order of `epoch`.
    package func epochOrder(_ epoch: Int) -> [Int] {
        var stream = RandomStream(seed: seed, stream: TranslationData.epochStreamBase + UInt64(epoch))
        return LengthBuckets.permutation(count: batches.count, stream: &stream)
    }

    package func microBatch(index: Int) -> Batch {
        let epoch = index / batches.count, position = index % batches.count
        let members = batches[epochOrder(epoch)[position]]
        return Batch(pairs: members.map { trainPairs[$0] })
    }

    /// Lines read and skipped, for the start of a run.
    package var loadReport: String? {
        let padded = batches.reduce(0) { total, b in
            let w = b.map { Swift.max(trainPairs[$0].source.count, trainPairs[$0].target.count + 1) }.max() ?? 0
            return total + w * b.count
        }
        let targets = trainPairs.reduce(0) { $0 + $1.target.count + 1 }
        return "train \(trainCorpus.report); valid \(validCorpus.report); "
            + "\(batches.count) micro-batches per epoch, \(targets) target tokens, "
            + String(
                format: "%.0f%% of padded slots used; tokenizer %@ (%d tokens)",
                100 * Double(targets) / Double(Swift.max(padded, 1)), tokenizer.hash, tokenizer.vocabSize)
    }

    /// The first `bleu_sample` validation pairs' sources; their greedy translations are scored
    /// every `bleu_every`-th validation and at the last step.
    package var scoredSources: [[Int32]] {
        validationPairs.prefix(Swift.min(bleuSample, validationPairs.count)).map(\.source)
    }
    package var scoreEvery: Int { bleuEvery }

    /// BLEU and chrF of the translations of `scoredSources` against their reference texts.
    package func score(translations: [[Int32]]) -> [String: Double] {
        let hypotheses = translations.map { tokenizer.decode($0) }
        let references = Array(validationText.prefix(hypotheses.count).map(\.target))
        return [
            "bleu": CorpusBLEU.score(hypotheses: hypotheses, references: references).score,
            "chrf": CorpusChrF.score(hypotheses: hypotheses, references: references),
        ]
    }
}

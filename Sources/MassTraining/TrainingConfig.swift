public import Foundation

/// A training job's JSON configuration, as `mass train CONFIG` reads it and `POST /admin/jobs` queues it
/// (docs/training.md). Decoding and `validate()` check everything that does not need the files, so a job is
/// refused when it is submitted rather than when a worker runs it.
public struct TrainingConfig: Codable, Sendable {
    public struct Dataset: Codable, Sendable {
        public var path: String
        public var text: String?
        public var pair: String?
        public var label: String?
        public var labels: [String]?
        public var skipOtherLabels: Bool?
        /// An image folder's images: resized and cropped to `side`×`side`, `channels` 1 (grey) or 3 (RGB).
        public var side: Int?
        public var channels: Int?
        /// Unlabelled text (distillation): more files read after `path`, each with its own text column.
        public var more: [TextFile]?
        /// Unlabelled text (distillation): texts found in these files are left out (an evaluation set's, so the
        /// student never sees them).
        public var exclude: [TextFile]?
        /// Unlabelled text (distillation): files whose texts only join the training part, after the split of the
        /// others (so the validation and test parts stay those of a run without them); a text also found in the
        /// validation or test part is left out.
        public var trainOnly: [TextFile]?
        /// Images: train (validate) on only the first this many of the split's shuffled train (validation) part,
        /// for quick runs and tuning studies; the test part stays whole.
        public var maxTrain: Int?
        public var maxValidation: Int?

        enum CodingKeys: String, CodingKey {
            case path, text, pair, label, labels, side, channels
            case skipOtherLabels = "skip_other_labels"
            case more, exclude
            case trainOnly = "train_only"
            case maxTrain = "max_train"
            case maxValidation = "max_validation"
        }
    }

    /// A file of unlabelled texts: a `.txt` file's lines, or the `text` column of a `.jsonl` or `.csv` file.
    public struct TextFile: Codable, Sendable {
        public var path: String
        public var text: String?
        /// Leave out rows whose text is empty (else they are refused with their line).
        public var skipEmpty: Bool?

        public init(path: String, text: String? = nil, skipEmpty: Bool? = nil) {
            self.path = path
            self.text = text
            self.skipEmpty = skipEmpty
        }

        enum CodingKeys: String, CodingKey {
            case path, text
            case skipEmpty = "skip_empty"
        }
    }

    public struct Split: Codable, Sendable {
        public var validation: Double?
        public var test: Double?
        public var seed: UInt64?
        /// Which block of the shuffled non-test examples is the validation part (default 0; the test part stays).
        public var fold: Int?

        enum CodingKeys: String, CodingKey { case validation, test, seed, fold }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeIfPresent(validation, forKey: .validation)
            try container.encodeIfPresent(test, forKey: .test)
            try container.encodeIfPresent(seed, forKey: .seed)
            // Always written, so a study can vary it from its default (`confirm.seed`: "split.fold").
            try container.encode(fold ?? 0, forKey: .fold)
        }
    }

    /// What a job does with its model when it succeeds: registers it as the next version of `model`, and moves
    /// `alias` to it.
    public struct Register: Codable, Sendable {
        public var model: String
        public var alias: String?
        public var description: String?
    }

    public static let tasks = [
        "text-classification-head", "text-classification-finetune", "text-embedding-distill",
        "image-classification-cnn", "image-classification-head",
    ]
    /// The task of the model folder a run writes, as mass serve loads it; nil when it writes none
    /// (`image-classification-cnn`).
    public var servedTask: String? {
        switch task {
        case "text-classification-head", "text-classification-finetune": "text-classification"
        case "text-embedding-distill": "text-embedding"
        case "image-classification-head": "image-classification"
        default: nil
        }
    }

    /// The task's settings as JSON (sorted keys), for the model's lineage.
    public func settingsJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data =
            switch task {
            case "text-classification-head", "image-classification-head": try encoder.encode(headSettings)
            case "text-embedding-distill": try encoder.encode(distillSettings)
            case "image-classification-cnn": try encoder.encode(imageSettings)
            default: try encoder.encode(fineTuningSettings)
            }
        return String(decoding: data, as: UTF8.self)
    }

    /// The tasks that train on a sentence encoder's texts (the others take images).
    public var isText: Bool { task.hasPrefix("text-") }

    public var task: String
    /// A sentence-transformers folder (text tasks) or an image classifier folder (`image-classification-head`), or
    /// `registry:NAME@SELECTOR` (a registered version; for jobs).
    public var encoder: String?
    public var dataset: Dataset
    public var split: Split?
    public var head: HeadTraining.Settings?
    public var finetune: FineTuning.Settings?
    public var images: ImageTraining.Settings?
    public var distill: Distillation.Settings?
    /// The run's folder (`mass train`; a job's folder is its worker's).
    public var output: String?
    public var register: Register?

    public var validationShare: Double { split?.validation ?? 0.1 }
    public var testShare: Double { split?.test ?? 0.2 }
    public var seed: UInt64 { split?.seed ?? 42 }
    public var fold: Int { split?.fold ?? 0 }
    public var headSettings: HeadTraining.Settings { head ?? HeadTraining.Settings() }
    public var fineTuningSettings: FineTuning.Settings { finetune ?? FineTuning.Settings() }
    public var imageSettings: ImageTraining.Settings { images ?? ImageTraining.Settings() }
    public var distillSettings: Distillation.Settings { distill ?? Distillation.Settings() }

    /// Decodes `data`, naming the key a decoding error is about.
    public static func decode(_ data: Data) throws(TrainingError) -> TrainingConfig {
        do {
            return try JSONDecoder().decode(TrainingConfig.self, from: data)
        } catch let error as DecodingError {
            throw TrainingError(.badConfig, describe(error))
        } catch {
            throw TrainingError(.badConfig, "not a valid configuration")
        }
    }

    /// Everything that can be checked without the files.
    public func validate() throws(TrainingError) {
        guard Self.tasks.contains(task) else {
            throw TrainingError(.badConfig, "task '\(task)' is unknown (\(Self.tasks.joined(separator: ", ")))")
        }
        if isText || task == "image-classification-head" {
            guard let encoder else { throw TrainingError(.badConfig, "missing 'encoder'") }
            guard !encoder.isEmpty else { throw TrainingError(.badConfig, "'encoder' is empty") }
        }
        if register != nil && servedTask == nil {
            throw TrainingError(
                .badConfig,
                "register: task '\(task)' makes no model mass serve loads yet (image-classification-head does)")
        }
        guard !dataset.path.isEmpty else { throw TrainingError(.badConfig, "'dataset.path' is empty") }
        if let side = dataset.side, side < 4 || side % 4 != 0 || side > 512 {
            throw TrainingError(.badConfig, "'dataset.side' must be a multiple of 4 from 4 to 512")
        }
        if let channels = dataset.channels, channels != 1 && channels != 3 {
            throw TrainingError(.badConfig, "'dataset.channels' must be 1 or 3")
        }
        do { try headSettings.validate() } catch { throw TrainingError(.badConfig, "head: \(error.message)") }
        do { try fineTuningSettings.validate() } catch {
            throw TrainingError(.badConfig, "finetune: \(error.message)")
        }
        do { try imageSettings.validate() } catch { throw TrainingError(.badConfig, "images: \(error.message)") }
        do { try distillSettings.validate() } catch { throw TrainingError(.badConfig, "distill: \(error.message)") }
        if let more = dataset.more {
            guard task == "text-embedding-distill" else {
                throw TrainingError(.badConfig, "'dataset.more' is for unlabelled text (text-embedding-distill)")
            }
            if let index = more.firstIndex(where: \.path.isEmpty) {
                throw TrainingError(.badConfig, "'dataset.more[\(index)].path' is empty")
            }
        }
        for (key, files) in [("exclude", dataset.exclude), ("train_only", dataset.trainOnly)] {
            guard let files else { continue }
            guard task == "text-embedding-distill" else {
                throw TrainingError(.badConfig, "'dataset.\(key)' is for unlabelled text (text-embedding-distill)")
            }
            if let index = files.firstIndex(where: \.path.isEmpty) {
                throw TrainingError(.badConfig, "'dataset.\(key)[\(index)].path' is empty")
            }
        }
        for (key, value) in [("max_train", dataset.maxTrain), ("max_validation", dataset.maxValidation)] {
            guard let value else { continue }
            guard task.hasPrefix("image-") else {
                throw TrainingError(.badConfig, "'dataset.\(key)' is for image tasks")
            }
            guard value > 0 else { throw TrainingError(.badConfig, "'dataset.\(key)' must be positive") }
        }
        guard validationShare > 0, testShare >= 0, validationShare + testShare < 1 else {
            throw TrainingError(.badConfig, "split: validation must be > 0 and validation + test < 1")
        }
        let folds = Sampling.folds(validation: validationShare, test: testShare)
        guard (0..<folds).contains(fold) else {
            throw TrainingError(
                .badConfig,
                "'split.fold' must be from 0 to \(folds - 1) (the validation part's blocks outside the test part)")
        }
        guard dataset.pair == nil else {
            throw TrainingError(.badConfig, "dataset.pair: a head on sentence embeddings takes single texts")
        }
        if let register, register.model.isEmpty {
            throw TrainingError(.badConfig, "'register.model' is empty")
        }
    }

    /// A decoding error as a sentence naming the key.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing '\(path(context.codingPath + [key]))'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "'\(path(context.codingPath))' has the wrong type"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "'\(path(context.codingPath))' is not valid"
        @unknown default: return "not a valid configuration"
        }
    }
}

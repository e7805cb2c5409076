import ArgumentParser
import Foundation
import MassModels
import MassRegistry
import MassTensor
import MassTokenizers
import MassTraining
import MassWeights

extension TrainCommand {
    /// Task "text-embedding-distill": a student with some of the teacher's layers learns the teacher's
    /// embeddings of unlabelled texts (every file read whole first); the teacher embeds them once (kept as a
    /// checkpoint, so a resumed run skips it). The saved student is then measured as served: both folders through
    /// the inference engine on the test texts.
    func distill(_ config: TrainingConfig, out: URL, checkpoints: URL) throws {
        let settings = config.distillSettings
        let training = settings.training
        let teacher = URL(fileURLWithPath: config.encoder ?? "")
        let files =
            [TrainingConfig.TextFile(path: config.dataset.path, text: config.dataset.text)]
            + (config.dataset.more ?? [])
        var texts: [String] = []
        var listing = ""
        var excluded = Set<String>()
        do {
            for file in files {
                let url = URL(fileURLWithPath: file.path)
                texts += try TextDataset.texts(
                    contentsOf: url, column: file.text ?? "text", skipEmpty: file.skipEmpty ?? false)
                listing += "\(file.path) \(try ArtifactStore.sha256(of: url).sha256)\n"
            }
            for file in config.dataset.exclude ?? [] {
                let url = URL(fileURLWithPath: file.path)
                excluded.formUnion(
                    try TextDataset.texts(contentsOf: url, column: file.text ?? "text", skipEmpty: true).map {
                        $0.trimmingCharacters(in: .whitespacesAndNewlines)
                    })
                listing += "exclude \(file.path) \(try ArtifactStore.sha256(of: url).sha256)\n"
            }
            if !excluded.isEmpty {
                let count = texts.count
                texts.removeAll { excluded.contains($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                log("dataset: \(count - texts.count) texts left out (found in 'exclude')")
            }
        } catch let error as DatasetError {
            throw ValidationError("dataset: \(error)")
        }
        var split = Sampling.split(
            texts.count, validation: config.validationShare, test: config.testShare, seed: config.seed,
            fold: config.fold)
        guard !split.train.isEmpty, !split.validation.isEmpty else {
            throw ValidationError(
                "dataset: \(texts.count) texts are too few for a training and a validation part")
        }
        log(
            "dataset: \(texts.count) texts from \(files.count) file(s); split \(split.train.count) / \(split.validation.count) / \(split.test.count)"
        )
        // Texts added after the split (train_only files, variants) join the training part, except a validation,
        // test or excluded one: answers how many joined and how many were left out.
        let heldOut = excluded.union(
            (split.validation + split.test).map { texts[$0].trimmingCharacters(in: .whitespacesAndNewlines) })
        func join(_ more: [String]) -> (added: Int, left: Int) {
            let kept = more.filter { !heldOut.contains($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            split.train += texts.count..<(texts.count + kept.count)
            texts += kept
            return (kept.count, more.count - kept.count)
        }
        let splitTrain = split.train
        if let extra = config.dataset.trainOnly {
            // After the split, so the validation and test parts are those of a run without these files.
            var (added, left) = (0, 0)
            do {
                for file in extra {
                    let url = URL(fileURLWithPath: file.path)
                    let joined = join(
                        try TextDataset.texts(
                            contentsOf: url, column: file.text ?? "text", skipEmpty: file.skipEmpty ?? false))
                    (added, left) = (added + joined.added, left + joined.left)
                    listing += "train_only \(file.path) \(try ArtifactStore.sha256(of: url).sha256)\n"
                }
            } catch let error as DatasetError {
                throw ValidationError("dataset: \(error)")
            }
            log(
                "dataset: \(added) texts from \(extra.count) 'train_only' file(s) join the training part (\(left) left out: held out or excluded)"
            )
        }
        if let augment = settings.augment {
            // Variants of the split's training texts only: the train_only files are extra text already.
            let (added, left) = join(augment.variants(of: splitTrain.map { texts[$0] }, seed: config.seed))
            listing += "augment \(augment.copies) \(augment.crop) \(augment.drop) \(config.seed)\n"
            log(
                "dataset: \(added) variants of the \(splitTrain.count) training texts join the training part (augment: \(augment.copies) per text, crop \(augment.crop), drop \(augment.drop); \(left) left out: held out or excluded)"
            )
        }
        let datasetHash =
            files.count == 1 && config.dataset.exclude == nil && config.dataset.trainOnly == nil
                && settings.augment == nil
            ? try Self.hash(URL(fileURLWithPath: files[0].path)) : try ArtifactStore.sha256(of: Data(listing.utf8))
        let run = Run(
            config: config, out: out, checkpoints: checkpoints, labelNames: [], split: split,
            datasetHash: datasetHash)

        guard let teacherLayers = try? TrainableSentenceEncoder.layerCount(teacher) else {
            throw ValidationError(
                "encoder: \(teacher.path) is not a sentence-transformers folder (no config.json with num_hidden_layers)"
            )
        }
        let (student, layers) = try makeStudent(settings, teacher: teacher, teacherLayers: teacherLayers)
        guard training.maxLength <= student.bert.config.maxPositionEmbeddings else {
            throw ValidationError(
                "distill: 'max_length' \(training.maxLength) is more than the encoder's \(student.bert.config.maxPositionEmbeddings) positions"
            )
        }
        log(
            "student: the teacher's layers \(layers) of \(teacherLayers)"
                + (settings.from.map { ", continued from \($0)" } ?? ""))
        let teacherModel = try SentenceEmbedder.load(teacher)
        guard student.bert.config.hiddenSize == teacherModel.encoder.hiddenSize else {
            throw ValidationError(
                "distill: the student's width \(student.bert.config.hiddenSize) is not the teacher's \(teacherModel.encoder.hiddenSize)"
            )
        }
        let targets = try teacherEmbeddings(
            run, texts: texts, teacher: teacherModel, student: student, maxLength: training.maxLength)

        try BLAS.setThreads(threads)
        // The teacher's token states, per batch, by the inference engine on this thread (OpenBLAS's threads do
        // the products).
        let workspace = teacherModel.makeWorkspace()
        let pool = ComputePool(threads: 1)
        let width = teacherModel.encoder.hiddenSize
        let objective = DistillationObjective(
            student, texts: texts, targets: targets, tokenWeight: settings.tokenWeight
        ) { sequences in
            let states = try teacherModel.encoder.hiddenStates(
                sequences, typeIds: nil, workspace: workspace, pool: pool)
            return Array(UnsafeBufferPointer(start: states, count: sequences.reduce(0) { $0 + $1.count } * width))
        }
        let before = objective.evaluate(split.validation, maxLength: training.maxLength).metric
        log(String(format: "before training: validation mean cosine to the teacher %.4f", before))
        let started = Date()
        let printer = StepPrinter(metric: "cosine", reports: reports ? training.epochs : nil)
        let result: FineTuning.Result
        do {
            result = try FineTuning(training).train(
                objective, lengths: texts.map(\.utf8.count), train: split.train, validation: split.validation,
                checkpoints: checkpoints, tag: "layers \(layers)", progress: printer.step, evaluated: printer.epoch)
        } catch { throw ValidationError("training: \(error.message)") }
        let seconds = Date().timeIntervalSince(started)

        let folder = out.appendingPathComponent("model")
        var metadata = try run.metadata(settings)
        metadata["mass.teacher_layers"] = layers.map(String.init).joined(separator: ",")
        try student.save(
            to: folder, copyingFrom: teacher, metadata: metadata, excluding: ["head.safetensors", "mass.json"])
        let test = split.test.map { texts[$0] }
        let agreement = try servedAgreement(teacher: teacher, student: folder, texts: test)
        log(
            String(
                format: "served student against the teacher on %d test texts: mean cosine %.4f, lowest %.4f",
                test.count, agreement.mean, agreement.lowest))
        try writeReport(
            run, epochs: result.epochs, bestEpoch: result.bestEpoch,
            validationAccuracy: result.epochs[result.bestEpoch - 1].validationAccuracy, testAccuracy: agreement.mean,
            seconds: ["training": seconds], servedTask: "text-embedding", metric: "cosine",
            lossName: settings.tokenWeight > 0 ? "1 − cosine + token term" : "1 − cosine",
            extra: [
                "student_layers": layers, "teacher_layers": teacherLayers, "test_lowest_cosine": agreement.lowest,
                "validation_cosine_before_training": before,
            ])
    }

    /// The student and the teacher's layers it holds: those layers of the teacher, or (`from`) an earlier
    /// distillation's student of the same teacher.
    private func makeStudent(_ settings: Distillation.Settings, teacher: URL, teacherLayers: Int) throws -> (
        TrainableSentenceEncoder, [Int]
    ) {
        let dropout = settings.training.dropout
        guard let from = settings.from else {
            let layers = settings.studentLayers(teacherLayers: teacherLayers)
            guard let last = layers.last, last < teacherLayers else {
                throw ValidationError("distill: layers \(layers): the teacher has layers 0 to \(teacherLayers - 1)")
            }
            return (try TrainableSentenceEncoder(directory: teacher, dropout: dropout, layers: layers), layers)
        }
        let folder = URL(fileURLWithPath: from)
        let stored: String?
        do {
            stored = try SafeTensorsFile(path: folder.appendingPathComponent("model.safetensors").path).metadata[
                "mass.teacher_layers"]
        } catch { throw ValidationError("distill: 'from' \(from): \(error)") }
        let held = stored?.split(separator: ",").compactMap { Int($0) } ?? []
        guard let stored, !held.isEmpty, held.count == stored.split(separator: ",").count,
            held.allSatisfy({ (0..<teacherLayers).contains($0) })
        else {
            throw ValidationError(
                "distill: 'from' \(from) is not a student of a \(teacherLayers)-layer teacher (its model.safetensors names no teacher layers in 'mass.teacher_layers')"
            )
        }
        if let layers = settings.layers, layers != held {
            throw ValidationError("distill: 'layers' \(layers), but 'from' \(from) holds the teacher's layers \(held)")
        }
        let student: TrainableSentenceEncoder
        do { student = try TrainableSentenceEncoder(directory: folder, dropout: dropout) } catch {
            throw ValidationError("distill: 'from' \(from): \(error)")
        }
        guard student.bert.config.numHiddenLayers == held.count else {
            throw ValidationError(
                "distill: 'from' \(from) has \(student.bert.config.numHiddenLayers) layers, its metadata names \(held.count)"
            )
        }
        return (student, held)
    }

    /// The teacher's embedding of every text, cut to `maxLength` tokens as the student sees it, from the run's
    /// checkpoint when an earlier attempt made them for the same teacher, texts and length.
    private func teacherEmbeddings(
        _ run: Run, texts: [String], teacher: SentenceEmbedder, student: TrainableSentenceEncoder, maxLength: Int
    ) throws -> [[Float]] {
        try cachedVectors(
            run, file: "teacher.safetensors",
            key: [
                "mass.encoder": run.config.encoder ?? "", "mass.dataset_sha256": run.datasetHash,
                "mass.max_length": String(maxLength),
            ], count: texts.count, what: "teacher embeddings: \(texts.count) texts"
        ) {
            try embedAll(
                teacher,
                texts.map { student.tokenizer.encode($0, maxLength: maxLength).ids })
        }
    }

    /// The mean and lowest cosine between two served embedding models' embeddings of `texts` (each folder loaded
    /// by the inference engine, each with its own tokenizer and length limit).
    func servedAgreement(teacher: URL, student: URL, texts: [String]) throws -> (
        mean: Double, lowest: Double
    ) {
        guard !texts.isEmpty else { return (0, 0) }
        func embed(_ folder: URL) throws -> [[Float]] {
            let embedder = try SentenceEmbedder.load(folder)
            return try embedAll(embedder, texts.map { embedder.tokenize($0).ids })
        }
        let cosines = zip(try embed(teacher), try embed(student)).map { a, b in
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            return dot / max(na * nb, 1e-12)
        }
        return (cosines.reduce(0, +) / Double(cosines.count), cosines.min() ?? 0)
    }
}

/// What a served model does. The string values are the `task` key of `mass.json`.
public enum ModelTask: String, Sendable, CaseIterable, Codable {
    case textEmbedding = "text-embedding"
    case textClassification = "text-classification"
    case rerank
    case speechRecognition = "speech-recognition"
    case imageClassification = "image-classification"
}

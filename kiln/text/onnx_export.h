#pragma once
// ONNX export of the trained text models (TextClassificationModel, SentenceSimilarityModel).
//
//   auto model = kiln::text::TextClassificationModel::load("spam_model");
//   kiln::text::export_onnx(model, "spam_model/model.onnx");
//   // kiln inspect spam_model/model.onnx  ->  inputs input_ids, attention_mask [batch, sequence]
//
// The graph (eval mode: dropout off), B = batch and T = sequence, both dynamic:
//   inputs   input_ids       (B, T) int64   token ids from the model's tokenizer, right-padded
//            attention_mask  (B, T) int64   1 = real token, 0 = padding (Hugging Face convention)
//   output   probabilities   (B, K) float32 softmax over the classes, in labels() order
//            (classification), or score (B) float32 (sentence similarity).
// Initializers are named by the module's parameter names ("encoder.layers.0.norm0.weight", ...),
// the same names as model.safetensors. T may not exceed the encoder's max_positions.
#include <filesystem>
#include <string>

#include "kiln/onnx/export.h"
#include "kiln/text/trainers.h"

namespace kiln::text {

/// Default ONNX options for a text model: input names, output name and the dynamic axes above are
/// filled in by export_onnx; the rest (opset, fp16 weights, producer) is taken from `options`.
/// Returns what export_model wrote. Throws kiln::Error (from kiln::onnx::export_model) when the
/// model cannot be exported or the file fails the ONNX checker, kiln::IOError when `path` cannot be
/// written.
onnx::ExportInfo export_onnx(const TextClassificationModel& model,
                             const std::filesystem::path& path,
                             const onnx::ExportOptions& options = {});

/// The same for a sentence-similarity model; its output is `score` (B) float32.
onnx::ExportInfo export_onnx(const SentenceSimilarityModel& model,
                             const std::filesystem::path& path,
                             const onnx::ExportOptions& options = {});

/// The lower-level form both call: exports `module` with the graph above; `probabilities` = true
/// appends a softmax over the last axis and names the output "probabilities", false names the
/// module's output "score" (a regression head) or "logits" (a classifier). `module`'s training flag
/// is restored afterwards and its parameters stay named with `module` as the root (as in a
/// trained model's module()).
onnx::ExportInfo export_text_classifier(TextClassifier& module, const std::filesystem::path& path,
                                        bool probabilities,
                                        const onnx::ExportOptions& options = {});

}  // namespace kiln::text

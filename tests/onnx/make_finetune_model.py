#!/usr/bin/python3
# Writes tests/data/onnx/fashion_cnn.onnx: a small CNN (Conv-BN-ReLU-MaxPool x2, Linear) exported
# from PyTorch (Debian's python3-torch 1.13) with a dynamic batch axis, seeded, untrained (random
# init). tests/onnx/import_finetune_test.cpp imports it and fine-tunes it on Fashion-MNIST; CI only
# reads the committed file. Run with /usr/bin/python3 from the repository root.
import torch
import torch.nn as nn

torch.manual_seed(1234)


class FashionCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 7 * 7, 10))

    def forward(self, x):  # (B, 1, 28, 28) -> (B, 10) logits
        return self.classifier(self.features(x))


model = FashionCnn().eval()
torch.onnx.export(model, torch.randn(2, 1, 28, 28), "tests/data/onnx/fashion_cnn.onnx",
                  input_names=["pixels"], output_names=["logits"],
                  dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
                  opset_version=13, do_constant_folding=False)

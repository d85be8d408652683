"""The PyTorch examples' fast-neural-style ``TransformerNet``, written out for the parity tests (needs torch)."""

from __future__ import annotations

import torch
from torch import nn


class ConvLayer(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(channels_in, channels_out, kernel, stride)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1, self.in1 = ConvLayer(channels, channels, 3, 1), nn.InstanceNorm2d(channels, affine=True)
        self.conv2, self.in2 = ConvLayer(channels, channels, 3, 1), nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.in2(self.conv2(self.relu(self.in1(self.conv1(x))))) + x


class UpsampleConvLayer(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int, upsample: int):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(channels_in, channels_out, kernel, stride)

    def forward(self, x):
        x = nn.functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    def __init__(self, running_stats: bool = False):
        super().__init__()
        norm = lambda c: nn.InstanceNorm2d(c, affine=True, track_running_stats=running_stats)  # noqa: E731
        self.conv1, self.in1 = ConvLayer(3, 32, 9, 1), norm(32)
        self.conv2, self.in2 = ConvLayer(32, 64, 3, 2), norm(64)
        self.conv3, self.in3 = ConvLayer(64, 128, 3, 2), norm(128)
        self.res1, self.res2, self.res3, self.res4, self.res5 = (ResidualBlock(128) for _ in range(5))
        self.deconv1, self.in4 = UpsampleConvLayer(128, 64, 3, 1, 2), norm(64)
        self.deconv2, self.in5 = UpsampleConvLayer(64, 32, 3, 1, 2), norm(32)
        self.deconv3 = ConvLayer(32, 3, 9, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def trained_like(seed: int = 0) -> TransformerNet:
    """Seeded weights with norm scales and shifts away from 1 and 0, and an output spanning 0..255, as a
    trained model's are."""
    torch.manual_seed(seed)
    net = TransformerNet(running_stats=True).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
        net.deconv3.conv2d.weight.mul_(400.0)
        net.deconv3.conv2d.bias.add_(127.5)
    net.track_running_stats = False
    for module in net.modules():  # like the 2017 files: running statistics saved, not used
        if isinstance(module, nn.InstanceNorm2d):
            module.track_running_stats = False
    return net


def styled(net: TransformerNet, rgb):
    """The example's stylize: 0..255 in, the output clamped to 0..255, as H x W x 3 float."""
    with torch.no_grad():
        x = torch.from_numpy(rgb.astype("float32")).permute(2, 0, 1)[None]
        return net(x)[0].clamp(0, 255).permute(1, 2, 0).numpy()

#!/usr/bin/env python3
"""Python/PyTorch baseline for `difflab-cli bench`.

Builds exactly the network of core/model/unet.cpp + core/model/embedding.cpp for the
default config (configs/mnist.yaml: base 32, mult [1, 2, 4], 2 res blocks, attention at
7x7, 4 heads, dropout 0.1, SiLU, 10 classes, 28x28x1) and times it the way
core/train/bench.cpp does:

  * training: Trainer::train_step (core/train/trainer.cpp) on synthetic uint8 images
    scaled to [-1, 1]: random t in [0, 1000), random labels with 10% label dropout to
    the null class, eps-prediction MSE, AdamW (lr 2e-4 with the linear warm-up, betas
    0.9/0.999, weight decay 0), global grad-norm clip 1.0, then the EMA update of a copy
    (which, like the C++ trainer, copies the weights while step <= ema_start = 500 and
    averages with decay 0.999 afterwards). 3 warm-up steps, then N timed steps.
  * sampling: DDIM (eta 0) respaced to sample_steps + 2 steps, batch 16, EMA model in
    eval mode under torch.no_grad, no guidance (one forward per step, with the class
    labels), clipped x0. The clock starts right after the second step's forward pass and
    stops when sampling ends, exactly as bench.cpp's step callback does, and the time is
    divided by sample_steps.

Plain PyTorch 1.13 eager mode: no torch.compile, no TorchScript, no channels-last tricks.
Run it with the interpreter that has the Debian python3-torch package (/usr/bin/python3).
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The C++ default model (`difflab-cli bench`, "model: N parameters").
CPP_DEFAULT_PARAMETERS = 3_940_801

# configs/mnist.yaml / core/config/config.h defaults.
CONFIG = dict(
    image_size=28,
    channels=1,
    timesteps=1000,
    base_channels=32,
    channel_mult=(1, 2, 4),
    num_res_blocks=2,
    attention_resolutions=(7,),
    num_heads=4,
    dropout=0.1,
    norm_groups=8,
    num_classes=10,
    zero_init_last=True,
    lr=2e-4,
    adam_betas=(0.9, 0.999),
    weight_decay=0.0,
    warmup_steps=200,
    grad_clip=1.0,
    ema_decay=0.999,
    ema_start=500,
    p_uncond=0.1,
)


# --- model (core/model/unet.cpp, core/model/embedding.cpp) ---------------------------

def timestep_embedding(t, dim, max_period=10000.0):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.to(torch.float32).unsqueeze(1) * freqs.unsqueeze(0)
    emb = torch.cat([torch.cos(args), torch.sin(args)], 1)
    if dim % 2 == 1:
        emb = torch.cat([emb, torch.zeros(emb.size(0), 1)], 1)
    return emb


class GroupNorm(nn.GroupNorm):
    """As core/model/unet.cpp's norm(): under bf16 autocast a convolution hands back bf16,
    which PyTorch 1.13's CPU group_norm refuses next to float32 affine weights; the
    statistics are taken in float32 and the result goes back to the input's type."""

    def forward(self, x):
        if x.dtype in (torch.bfloat16, torch.float16):
            return super().forward(x.float()).to(x.dtype)
        return super().forward(x)


def make_norm(groups, channels):
    return GroupNorm(math.gcd(groups, channels), channels)


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def zero_module(m):
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim, groups, dropout):
        super().__init__()
        self.in_norm = make_norm(groups, cin)
        self.in_conv = conv3x3(cin, cout)
        self.emb_proj = nn.Linear(emb_dim, cout)
        self.out_norm = make_norm(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.out_conv = conv3x3(cout, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb_act):
        h = self.in_conv(F.silu(self.in_norm(x)))
        h = h + self.emb_proj(emb_act).unsqueeze(-1).unsqueeze(-1)
        h = self.out_conv(self.dropout(F.silu(self.out_norm(h))))
        return (self.skip(x) if self.skip is not None else x) + h

    def last_layer(self):
        return self.out_conv


class Attention(nn.Module):
    def __init__(self, channels, heads, groups):
        super().__init__()
        assert channels % heads == 0
        self.heads = heads
        self.norm = make_norm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(b * self.heads, 3 * d, h * w)
        q, k, v = qkv.chunk(3, 1)
        scale = 1.0 / math.sqrt(math.sqrt(d))
        weight = torch.bmm((q * scale).transpose(1, 2), k * scale)
        weight = torch.softmax(weight, -1)
        a = torch.bmm(v, weight.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj_out(a)

    def last_layer(self):
        return self.proj_out


class UNetBlock(nn.Module):
    """conv_in / res(+attn) / stride-2 down / nearest-up + conv, as UNetBlockImpl."""

    def __init__(self, kind, conv=None, res=None, attn=None):
        super().__init__()
        self.kind = kind
        if kind == "down":
            self.op = conv
        elif conv is not None:
            self.conv = conv
        if res is not None:
            self.res = res
        if attn is not None:
            self.attn = attn

    def forward(self, x, emb_act, size=None):
        if self.kind == "conv":
            return self.conv(x)
        if self.kind == "down":
            return self.op(x)
        if self.kind == "res":
            x = self.res(x, emb_act)
            return self.attn(x) if hasattr(self, "attn") else x
        x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x)

    def zero_last_layers(self):
        if hasattr(self, "res"):
            zero_module(self.res.last_layer())
        if hasattr(self, "attn"):
            zero_module(self.attn.last_layer())


class UNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        base = c["base_channels"]
        groups, dropout, heads = c["norm_groups"], c["dropout"], c["num_heads"]
        emb_dim = 4 * base
        self.base = base
        self.num_classes = c["num_classes"]
        self.time_embed_0 = nn.Linear(base, emb_dim)
        self.time_embed_2 = nn.Linear(emb_dim, emb_dim)
        # One extra row: the "null" label for unconditional predictions (CFG).
        self.label_emb = nn.Embedding(self.num_classes + 1, emb_dim)

        def res_block(cin, cout, attention):
            return UNetBlock("res", res=ResBlock(cin, cout, emb_dim, groups, dropout),
                             attn=Attention(cout, heads, groups) if attention else None)

        attn_res = set(c["attention_resolutions"])
        mult = c["channel_mult"]
        self.input_blocks = nn.ModuleList()
        self.output_blocks = nn.ModuleList()
        ch, res = base, c["image_size"]
        skip_channels, level_res = [], []
        self.input_blocks.append(UNetBlock("conv", conv=conv3x3(c["channels"], ch)))
        skip_channels.append(ch)
        for level in range(len(mult)):
            level_res.append(res)
            for _ in range(c["num_res_blocks"]):
                out = base * mult[level]
                self.input_blocks.append(res_block(ch, out, res in attn_res))
                ch = out
                skip_channels.append(ch)
            if level + 1 < len(mult):
                self.input_blocks.append(UNetBlock("down", conv=conv3x3(ch, ch, 2)))
                skip_channels.append(ch)
                res = (res + 1) // 2  # stride-2 conv with padding 1: ceil(res / 2)
        self.middle_res1 = ResBlock(ch, ch, emb_dim, groups, dropout)
        self.middle_attn = Attention(ch, heads, groups)
        self.middle_res2 = ResBlock(ch, ch, emb_dim, groups, dropout)
        for level in reversed(range(len(mult))):
            for _ in range(c["num_res_blocks"] + 1):
                skip = skip_channels.pop()
                out = base * mult[level]
                self.output_blocks.append(res_block(ch + skip, out, level_res[level] in attn_res))
                ch = out
            if level > 0:
                self.output_blocks.append(UNetBlock("up", conv=conv3x3(ch, ch)))
        self.out_norm = make_norm(groups, ch)
        self.out_conv = conv3x3(ch, c["channels"])

        if c["zero_init_last"]:  # init = Default: PyTorch's own initialisation otherwise
            for block in list(self.input_blocks) + list(self.output_blocks):
                block.zero_last_layers()
            for m in (self.middle_res1.last_layer(), self.middle_attn.last_layer(),
                      self.middle_res2.last_layer(), self.out_conv):
                zero_module(m)

    def forward(self, x, t, y=None):
        emb = self.time_embed_2(F.silu(self.time_embed_0(timestep_embedding(t, self.base))))
        if y is None:
            y = torch.full((x.size(0),), self.num_classes, dtype=torch.long)
        emb = emb + self.label_emb(y)
        emb_act = F.silu(emb)
        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb_act)
            skips.append(h)
        h = self.middle_res1(h, emb_act)
        h = self.middle_attn(h)
        h = self.middle_res2(h, emb_act)
        for block in self.output_blocks:
            if block.kind == "up":
                h = block(h, emb_act, size=skips[-1].shape[2:])
                continue
            h = torch.cat([h, skips.pop()], 1)
            h = block(h, emb_act)
        return self.out_conv(F.silu(self.out_norm(h)))


# --- diffusion (core/schedule/noise_schedule.cpp, core/diffusion/gaussian_diffusion.cpp)

class Schedule:
    """Linear beta schedule (1e-4 .. 0.02 scaled by 1000/T), built in float64."""

    def __init__(self, betas, timestep_map):
        self.betas = betas
        self.timestep_map = timestep_map
        self.alphas_cumprod, self.alphas_cumprod_prev = [], []
        prod = 1.0
        for b in betas:
            self.alphas_cumprod_prev.append(prod)
            prod *= 1.0 - b
            self.alphas_cumprod.append(prod)

    @staticmethod
    def linear(timesteps):
        scale = 1000.0 / timesteps
        b0, b1 = scale * 1e-4, scale * 0.02
        betas = [b0 + (b1 - b0) * i / (timesteps - 1) for i in range(timesteps)]
        return Schedule(betas, list(range(timesteps)))

    def respaced(self, steps):
        n = len(self.betas)
        if steps == n:
            return self
        if steps == 1:
            keep = [n - 1]
        else:
            stride = (n - 1) / (steps - 1)
            keep = [int(math.floor(i * stride + 0.5)) for i in range(steps)]  # lround
        betas, tmap, last = [], [], 1.0
        for k in keep:
            betas.append(1.0 - self.alphas_cumprod[k] / last)
            last = self.alphas_cumprod[k]
            tmap.append(self.timestep_map[k])
        return Schedule(betas, tmap)


class Diffusion:
    def __init__(self, schedule):
        self.schedule = schedule
        ac = torch.tensor(schedule.alphas_cumprod, dtype=torch.float64)
        f32 = lambda v: v.to(torch.float32)
        self.sqrt_ac = f32(ac.sqrt())
        self.sqrt_1m_ac = f32((1.0 - ac).sqrt())
        self.sqrt_recip_ac = f32((1.0 / ac).sqrt())
        self.sqrt_recipm1_ac = f32((1.0 / ac - 1.0).sqrt())
        self.timestep_map = torch.tensor(schedule.timestep_map, dtype=torch.long)

    def num_steps(self):
        return len(self.schedule.betas)

    @staticmethod
    def extract(table, t, ndim):
        return table.index_select(0, t).view([t.size(0)] + [1] * (ndim - 1))

    def model_timesteps(self, t):
        return self.timestep_map.index_select(0, t).to(torch.float32)

    def q_sample(self, x0, t, noise):
        n = x0.dim()
        return self.extract(self.sqrt_ac, t, n) * x0 + self.extract(self.sqrt_1m_ac, t, n) * noise

    def interpret_eps(self, out, xt, t, clip=True):
        n = xt.dim()
        eps = out
        x0 = self.extract(self.sqrt_recip_ac, t, n) * xt - self.extract(self.sqrt_recipm1_ac, t, n) * eps
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = (self.extract(self.sqrt_recip_ac, t, n) * xt - x0) / self.extract(self.sqrt_recipm1_ac, t, n)
        return eps, x0

    @staticmethod
    def simple_loss(out, target):
        return (out - target).pow(2).flatten(1).mean(1)


# --- trainer (core/train/trainer.cpp) ------------------------------------------------

class Trainer:
    def __init__(self, c, batch, n_data, seed=0):
        self.c = c
        self.batch = batch
        self.diffusion = Diffusion(Schedule.linear(c["timesteps"]))
        self.model = UNet(c)
        self.ema = UNet(c)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=c["lr"],
                                     betas=c["adam_betas"], weight_decay=c["weight_decay"])
        self.gen = torch.Generator().manual_seed(seed)
        # Synthetic data like bench.cpp: random uint8 images, labels 0..9.
        shape = (n_data, c["channels"], c["image_size"], c["image_size"])
        self.data = torch.randint(0, 256, shape, dtype=torch.uint8)
        self.labels = torch.randint(0, 10, (n_data,), dtype=torch.long)
        self.perm = torch.randperm(n_data, generator=self.gen)
        self.pos = 0
        self.step = 0

    def next_batch(self):
        n = self.data.size(0)
        if self.pos + self.batch > n:
            self.perm = torch.randperm(n, generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx

    def lr_at(self, s):
        w = self.c["warmup_steps"]
        return self.c["lr"] if w <= 0 else self.c["lr"] * min(1.0, (s + 1) / w)

    def train_step(self):
        c, d = self.c, self.diffusion
        self.model.train()
        # As the C++ trainer (now): dropout's global generator is reseeded from the run's own.
        torch.manual_seed(int(torch.randint(0, 1 << 62, (1,), generator=self.gen)))
        idx = self.next_batch()
        x0 = self.data.index_select(0, idx).to(torch.float32).div_(127.5).sub_(1.0)
        b = x0.size(0)
        t = torch.randint(0, d.num_steps(), (b,), generator=self.gen, dtype=torch.long)
        noise = torch.randn(x0.shape, generator=self.gen, dtype=torch.float32)
        y = self.labels.index_select(0, idx)
        drop = torch.rand(b, generator=self.gen) < c["p_uncond"]
        y = torch.where(drop, torch.full_like(y, self.model.num_classes), y)

        xt = d.q_sample(x0, t, noise)
        with autocast():
            out = self.model(xt, d.model_timesteps(t), y)
        per_example = d.simple_loss(out.float(), noise)
        loss = per_example.mean()
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise RuntimeError(f"loss is {loss_value} at step {self.step + 1}")
        self.opt.zero_grad()
        loss.backward()
        max_norm = c["grad_clip"] if c["grad_clip"] > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        if not math.isfinite(grad_norm):
            self.opt.zero_grad()
            raise RuntimeError(f"gradient norm is not finite at step {self.step + 1}")
        lr = self.lr_at(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        self.step += 1
        self.update_ema()
        per_example.detach().tolist()  # the C++ trainer keeps (t, loss) pairs on the host
        return loss_value

    @torch.no_grad()
    def update_ema(self):
        src = list(self.model.parameters())
        dst = list(self.ema.parameters())
        if self.step <= self.c["ema_start"]:
            for a, b in zip(dst, src):
                a.copy_(b)
            return
        decay = self.c["ema_decay"]
        for a, b in zip(dst, src):
            a.mul_(decay).add_(b, alpha=1.0 - decay)

    @torch.no_grad()
    def time_ddim(self, n, steps, warmup, timed):
        """DDIM, eta 0, no guidance; returns ms/step measured like bench.cpp."""
        seen, start = 0, None

        def callback():
            nonlocal seen, start
            seen += 1
            if seen == warmup:  # bench.cpp's step callback: the clock starts here
                start = time.perf_counter()

        ddim_sample(self.ema, self.diffusion.schedule, self.c, n, steps, callback=callback)
        return (time.perf_counter() - start) * 1e3 / timed


@torch.no_grad()
def ddim_sample(net, schedule, c, n, steps, seed=0, callback=None):
    """core/sampling/ddim.cpp + run_sampling (eta 0, guidance 1: one forward per step with
    the labels 0, 1, 2, ... cycling through the classes, x0 clipped to [-1, 1])."""
    was_training = net.training
    net.eval()
    diffusion = Diffusion(schedule.respaced(steps))
    ac, ac_prev = diffusion.schedule.alphas_cumprod, diffusion.schedule.alphas_cumprod_prev
    labels = torch.arange(n, dtype=torch.long).remainder(net.num_classes)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, c["channels"], c["image_size"], c["image_size"]), generator=gen)
    for i in reversed(range(steps)):
        t = torch.full((n,), i, dtype=torch.long)
        with autocast():
            out = net(x, diffusion.model_timesteps(t), labels)
        eps, x0 = diffusion.interpret_eps(out.float(), x, t, clip=True)
        if callback:
            callback()
        ab, ab_prev = ac[i], ac_prev[i]
        sigma = 0.0  # eta = 0: deterministic
        direction = math.sqrt(max(1.0 - ab_prev - sigma * sigma, 0.0))
        x = math.sqrt(ab_prev) * x0 + direction * eps
    if was_training:
        net.train()
    return x


PRECISION = "fp32"


def autocast():
    """--precision bf16: CPU autocast (convolutions, linear layers and matrix products in
    bfloat16, the rest in float32), as difflab's train/sample.precision bf16."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=PRECISION == "bf16")


def count_parameters(m):
    return sum(p.numel() for p in m.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch.set_num_threads (default: all cores)")
    ap.add_argument("--batch", type=int, default=64, help="training batch (default 64)")
    ap.add_argument("--train-steps", type=int, default=20, help="timed training steps (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed training steps first (default 3)")
    ap.add_argument("--sample-batch", type=int, default=16, help="DDIM batch (default 16)")
    ap.add_argument("--sample-steps", type=int, default=20, help="timed DDIM steps (default 20)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="fp32, or bf16 autocast for the network (default fp32)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    a = ap.parse_args()
    global PRECISION
    PRECISION = a.precision

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = CONFIG
    trainer = Trainer(c, a.batch, max(a.batch * 8, 512))
    params = count_parameters(trainer.model)

    for _ in range(a.warmup):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(a.train_steps):
        trainer.train_step()
    train_s = time.perf_counter() - start
    train_ms = train_s * 1e3 / a.train_steps
    images_per_s = a.batch * a.train_steps / train_s

    ddim_ms = trainer.time_ddim(a.sample_batch, a.sample_steps + 2, 2, a.sample_steps)

    core = os.environ.get("OPENBLAS_CORETYPE", "(auto)")
    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS", "(unset)")
    match = "matches" if params == CPP_DEFAULT_PARAMETERS else "DIFFERS FROM"
    print(f"PyTorch {torch.__version__} (Python {sys.version.split()[0]}), device cpu, "
          f"{torch.get_num_threads()} threads, OPENBLAS_CORETYPE={core}, "
          f"OPENBLAS_NUM_THREADS={blas_threads}, precision {PRECISION}")
    print(f"model: {params} parameters ({match} the C++ default model's {CPP_DEFAULT_PARAMETERS})")
    print(f"train  (batch {a.batch}): {images_per_s:.1f} images/s, {train_ms:.1f} ms/step")
    print(f"sample (DDIM, batch {a.sample_batch}): {ddim_ms:.1f} ms/step (no guidance)")
    peak_mb = 0.0
    try:
        import resource
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(f"peak memory (RSS): {peak_mb:.1f} MiB")
    except ImportError:
        pass

    if a.json:
        figures = dict(
            implementation="pytorch-python", torch_version=torch.__version__,
            python_version=sys.version.split()[0], threads=torch.get_num_threads(),
            openblas_coretype=core, parameters=params,
            parameters_match_cpp=params == CPP_DEFAULT_PARAMETERS,
            train_batch=a.batch, train_warmup_steps=a.warmup, train_steps=a.train_steps,
            train_step_ms=train_ms, train_images_per_s=images_per_s,
            sample_batch=a.sample_batch, sample_steps=a.sample_steps,
            ddim_ms_per_step=ddim_ms, peak_rss_mb=peak_mb)
        with open(a.json, "w") as f:
            json.dump(figures, f, indent=2)
            f.write("\n")
    return 0 if params == CPP_DEFAULT_PARAMETERS else 1


if __name__ == "__main__":
    sys.exit(main())

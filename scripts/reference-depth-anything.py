#!/usr/bin/python3
"""Golden fixtures for Depth Anything V2 (main/engine/nets/depth-anything.ts, imaging/depth-preprocess.ts).

No golden arrays are shipped for the depth estimator (shared/parity/control/README.md, "Depth"): this
script makes them with the reference code itself, HuggingFace transformers' DepthAnythingForDepthEstimation
(DINOv2 backbone, `Dinov2Backbone`), DPTImageProcessor and the depth-estimation pipeline's ControlNet
convention, on TINY random models built from configs chosen here:

  tiny-depth-anything       DINOv2 hidden 32, 4 layers, 2 heads, patch 14, 5x5 stored positions, GELU MLP,
                            out_indices [1, 2, 3, 4], neck [8, 12, 16, 24], factors [4, 2, 1, 0.5],
                            fusion 16, head 8, relative (ReLU); processor 84x84, multiple of 14.
  held-out-depth-anything   other sizes everywhere, so the code is shown to work for any valid config and
                            not only the one it was written against: hidden 48, 3 layers, 3 heads, patch 8,
                            4x4 positions, SwiGLU FFN, no qkv bias, layer scale 0.5, LN eps 1e-5,
                            apply_layernorm False, out_indices [0, 2, 3] (the stem too), 3 neck stages with
                            factors [2, 1, 0.25], fusion 12, head 6, head_in_index -2, metric (Sigmoid x 20);
                            processor 48x48, multiple of 8.

Each model is saved in the hub layout (config.json as save_pretrained writes it, to_json_file(use_diff=True);
model.safetensors written by the small writer below; preprocessor_config.json)
under test/fixtures/depth/<name>/. Every stage of the processor + model + post-processing is saved as .npy
under test/fixtures/depth/cases/<model>/<case>/, then the same run is repeated in float64
(model.double(), pixel values cast to float64) and the largest float32-vs-float64 differences per stage
go into manifest.json, with every file's shape, dtype and the call that made it. The tests' tolerances
derive from those gaps (manifest "tolerance_rule").

The ControlNet-depth map is the depth-estimation pipeline's `depth` image (transformers 4.57.6,
pipelines/depth_estimation.py, postprocess): post_process_depth_estimation resizes predicted_depth to the
image size with F.interpolate(mode="bicubic", align_corners=False), then
    depth = (d - d.min()) / (d.max() - d.min());  Image.fromarray((depth * 255).astype("uint8"))
(numpy float32 arithmetic, truncation), which the ControlNet depth examples replicate to 3 channels. The
pipeline itself is run too and must give the same map.

It also writes test/fixtures/depth/real-shapes-depth-anything-v2-small.json (with the config beside it,
real-config-depth-anything-v2-small.json, and the processor's, real-preprocessor-config-…): the state-dict keys, dtypes
and shapes of depth-anything/Depth-Anything-V2-Small-hf, from DepthAnythingForDepthEstimation built
(random init, nothing downloaded) from that checkpoint's config.json, reconstructed from
convert_depth_anything_to_hf.py's get_dpt_config("depth-anything-v2-small") (dinov2-small backbone,
out_indices [3, 6, 9, 12], fusion 64, neck [48, 96, 192, 384]) and written out in the listing.

Versions: Debian 12's /usr/bin/python3 (3.11.2) with python3-torch 1.13.0a0 (CPU), python3-numpy 1.24.2,
python3-pil 9.4.0; transformers 4.57.6 (the released wheel, tag v4.57.6, pure Python) and what its
import chain needs: the wheels filelock 4.0.8, packaging 26.3, pyyaml 6.0.3, regex 2026.9.29, tqdm 4.70.1,
safetensors 0.8.0, tokenizers 0.22.2 and typing_extensions 4.16.0, all unzipped into one folder (nothing
installed). Attention runs as transformers' "eager" implementation (torch 1.13 has no
scaled_dot_product_attention; eager is the same math written out).

What is stubbed, and nothing else (see `prepare_transformers`):
  - huggingface_hub: a placeholder package (every name a dummy class; constants HF_HOME etc. point
    nowhere; version 0.35.0 for transformers' dependency check): nothing here downloads.
  - transformers 4.57 requires torch >= 2.1: importlib.metadata reports torch as 2.1.0 to its version
    check, and the torch-2 names its import chain touches are added to Debian's torch 1.13:
    torch.compiler (disable, is_compiling), torch._dynamo (allow_in_graph, is_compiling, disable),
    torch.utils._pytree.register_pytree_node (-> _register_pytree_node), float8/uint16-64 dtype names
    (-> torch.uint8, only used in lookup tables), torch.distributed.is_available() -> False.
  None of these is on the depth model's compute path (eager attention, plain nn modules).

Run (from the repository root):
  mkdir -p /tmp/tf-site && for w in transformers-4.57.6-py3-none-any.whl <the other wheels above>; do unzip -q -o "$w" -d /tmp/tf-site; done
  /usr/bin/python3 scripts/reference-depth-anything.py --site /tmp/tf-site   # writes test/fixtures/depth/
"""
import argparse
import hashlib
import importlib.metadata
import json
import os
import struct
import sys
import tempfile
import types

import numpy as np
import PIL
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test/fixtures/depth")

HF_HUB_SHIM = '''"""Offline stand-in for huggingface_hub: every name is a placeholder class (nothing here downloads)."""
__version__ = "0.35.0"
HF_HOME = "/nonexistent/hf-home"
HF_HUB_CACHE = "/nonexistent/hf-home/hub"
default_cache_path = HF_HUB_CACHE
HF_HUB_OFFLINE = True
HF_HUB_DISABLE_TELEMETRY = True
def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    value = type(name, (Exception,), {"__init__": lambda self, *a, **k: None})
    globals()[name] = value
    return value
'''


def prepare_transformers(site):
    """Makes transformers 4.57.6 importable on Debian's torch 1.13 (the stubs listed in the docstring)."""
    shim = tempfile.mkdtemp(prefix="hf-hub-shim-")
    package = os.path.join(shim, "huggingface_hub")
    os.makedirs(package)
    for module in ["__init__", "utils", "constants", "errors", "file_download"]:
        with open(os.path.join(package, f"{module}.py"), "w") as f:
            f.write(HF_HUB_SHIM + ("from . import constants\n" if module == "__init__" else ""))
    info = os.path.join(shim, "huggingface_hub-0.35.0.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: huggingface_hub\nVersion: 0.35.0\n")
    sys.path[:0] = [shim, site]

    real_version = importlib.metadata.version
    importlib.metadata.version = lambda name: "2.1.0" if name == "torch" else real_version(name)

    import torch.utils._pytree as pytree

    torch.distributed.is_available = lambda: False
    if not hasattr(pytree, "register_pytree_node"):
        pytree.register_pytree_node = lambda typ, flatten, unflatten, **_: pytree._register_pytree_node(typ, flatten, unflatten)
    compiler = types.ModuleType("torch.compiler")
    compiler.disable = lambda fn=None, recursive=True: fn if fn is not None else (lambda f: f)
    compiler.is_compiling = lambda: False
    dynamo = types.ModuleType("torch._dynamo")
    dynamo.allow_in_graph = lambda fn: fn
    dynamo.is_compiling = lambda: False
    dynamo.disable = compiler.disable
    for name, module in [("torch.compiler", compiler), ("torch._dynamo", dynamo)]:
        if not hasattr(torch, name.split(".")[1]):
            setattr(torch, name.split(".")[1], module)
            sys.modules[name] = module
    for name in ["float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu", "float4_e2m1fn_x2", "uint16", "uint32", "uint64"]:
        if not hasattr(torch, name):
            setattr(torch, name, torch.uint8)

    import transformers

    return transformers


# ---------------------------------------------------------------------------------------------------
# Configs

TINY = {
    "name": "tiny-depth-anything",
    "backbone_config": {
        "model_type": "dinov2",
        "hidden_size": 32,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "mlp_ratio": 4,
        "image_size": 70,
        "patch_size": 14,
        "out_indices": [1, 2, 3, 4],
        "apply_layernorm": True,
        "reshape_hidden_states": False,
    },
    "depth": {
        "reassemble_hidden_size": 32,
        "patch_size": 14,
        "reassemble_factors": [4, 2, 1, 0.5],
        "neck_hidden_sizes": [8, 12, 16, 24],
        "fusion_hidden_size": 16,
        "head_hidden_size": 8,
        "depth_estimation_type": "relative",
    },
    "processor": {"size": {"height": 84, "width": 84}, "ensure_multiple_of": 14},
    "seed": 20261208,
}

HELD_OUT = {
    "name": "held-out-depth-anything",
    "backbone_config": {
        "model_type": "dinov2",
        "hidden_size": 48,
        "num_hidden_layers": 3,
        "num_attention_heads": 3,
        "mlp_ratio": 2,
        "image_size": 32,
        "patch_size": 8,
        "out_indices": [0, 2, 3],
        "use_swiglu_ffn": True,
        "qkv_bias": False,
        "layerscale_value": 0.5,
        "layer_norm_eps": 1e-5,
        "apply_layernorm": False,
        "reshape_hidden_states": False,
    },
    "depth": {
        "reassemble_hidden_size": 48,
        "patch_size": 8,
        "reassemble_factors": [2, 1, 0.25],
        "neck_hidden_sizes": [8, 16, 20],
        "fusion_hidden_size": 12,
        "head_hidden_size": 6,
        "head_in_index": -2,
        "depth_estimation_type": "metric",
        "max_depth": 20,
    },
    "processor": {"size": {"height": 48, "width": 48}, "ensure_multiple_of": 8},
    "seed": 20261209,
}

# The released checkpoint's config.json (depth-anything/Depth-Anything-V2-Small-hf), as
# convert_depth_anything_to_hf.py's get_dpt_config("depth-anything-v2-small") makes it and
# save_pretrained writes it (keys at their defaults omitted).
REAL_SMALL_CONFIG = {
    "architectures": ["DepthAnythingForDepthEstimation"],
    "backbone": None,
    "backbone_config": {
        "architectures": ["Dinov2Model"],
        "hidden_size": 384,
        "image_size": 518,
        "model_type": "dinov2",
        "num_attention_heads": 6,
        "out_features": ["stage3", "stage6", "stage9", "stage12"],
        "out_indices": [3, 6, 9, 12],
        "patch_size": 14,
        "reshape_hidden_states": False,
        "torch_dtype": "float32",
    },
    "fusion_hidden_size": 64,
    "head_hidden_size": 32,
    "head_in_index": -1,
    "initializer_range": 0.02,
    "model_type": "depth_anything",
    "neck_hidden_sizes": [48, 96, 192, 384],
    "patch_size": 14,
    "reassemble_factors": [4, 2, 1, 0.5],
    "reassemble_hidden_size": 384,
    "torch_dtype": "float32",
    "transformers_version": None,
    "use_pretrained_backbone": False,
}
REAL_SMALL_PREPROCESSOR = {
    "do_normalize": True,
    "do_pad": False,
    "do_rescale": True,
    "do_resize": True,
    "ensure_multiple_of": 14,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "DPTImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "keep_aspect_ratio": True,
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 518, "width": 518},
    "size_divisor": None,
}

# Inputs: two DreamBench photos (CC-BY 4.0, test/fixtures/dreambench/LICENSE.md) and a non-square crop of
# one of them (saved as PNG so that no JPEG decoder sits between the reference and the test).
CROP_SOURCE = "test/fixtures/dreambench/cat/01.jpg"
CROP_BOX = (120, 150, 360, 310)  # (left, top, right, bottom): 240 x 160
CASES = [
    ("dog-00", "test/fixtures/dreambench/dog/00.jpg"),
    ("cat-01", "test/fixtures/dreambench/cat/01.jpg"),
    ("cat-01-crop", "test/fixtures/depth/inputs/cat-01-crop.png"),
]
HELD_OUT_CASES = ["cat-01-crop"]
# depth_resized at 512 x 512 is 1 MB of float32: kept for one full-size photo and the crop; the final maps
# (uint8) of every case are kept.
RESIZED_KEPT = {"tiny-depth-anything/dog-00", "tiny-depth-anything/cat-01-crop", "held-out-depth-anything/cat-01-crop"}

# Image sizes (height, width) whose DPT resize size at the real processor settings (518, multiple of 14,
# keep aspect ratio) the TypeScript must reproduce: squares, portrait/landscape, up- and downscaling,
# and sizes where round() meets an exact half (Python rounds half to even).
RESIZE_SIZES = [(512, 512), (518, 518), (1000, 1500), (1500, 1000), (300, 400), (480, 640), (720, 1280), (1080, 1920),
                (160, 240), (37, 50), (518, 1036), (777, 518), (100, 7), (3024, 4032), (259, 518), (500, 519), (14, 14), (1, 1)]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_safetensors(path, tensors):
    """safetensors format: u64 LE header length, JSON header (padded with spaces to 8 bytes), C-order data."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, tensor in tensors.items():
        data = tensor.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode("utf-8"))
        for chunk in chunks:
            f.write(chunk)


def randomise(model, seed):
    """Every parameter gets seeded values of a scale that keeps activations O(1), so every weight matters."""
    generator = torch.Generator().manual_seed(seed)
    transposed = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, torch.nn.ConvTranspose2d)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float32)
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "lambda1" or (leaf == "weight" and p.dim() == 1):
                p.copy_(1 + 0.2 * noise)  # layer scale, LayerNorm scale
            elif leaf == "bias":
                p.copy_(0.1 * noise)
            elif leaf in ("cls_token", "mask_token", "position_embeddings"):
                p.copy_(noise)
            else:
                # Linear [out, in] and Conv2d [out, in, k, k]: fan-in = in·k·k; ConvTranspose2d [in, out, k, k] with
                # kernel = stride: each output sees `in` inputs.
                fan_in = p.shape[0] if name in transposed else p[0].numel()
                p.copy_(noise / fan_in ** 0.5)


def build_model(transformers, spec):
    backbone = transformers.Dinov2Config(**spec["backbone_config"])
    config = transformers.DepthAnythingConfig(backbone_config=backbone.to_dict(), **spec["depth"])
    config._attn_implementation = "eager"  # torch 1.13 has no scaled_dot_product_attention; eager is the reference's own math
    model = transformers.DepthAnythingForDepthEstimation(config).eval()
    randomise(model, spec["seed"])
    return model


def save_model(model, processor, folder):
    os.makedirs(folder, exist_ok=True)
    model.config.to_json_file(os.path.join(folder, "config.json"), use_diff=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), model.state_dict())
    processor.to_json_file(os.path.join(folder, "preprocessor_config.json"))


def pipeline_map(depth):
    """The depth-estimation pipeline's postprocess (transformers 4.57.6), on a numpy depth."""
    depth = (depth - depth.min()) / (depth.max() - depth.min())
    return (depth * 255).astype("uint8")


def run_stages(model, processor, image, dtype):
    """Processor → backbone → neck → head → post-processing, stage by stage with the reference's own modules."""
    pixel_values = processor(images=image, return_tensors="pt").pixel_values.to(dtype)
    m = model.to(dtype)
    stages = {"pixel_values": pixel_values}
    with torch.no_grad():
        embeddings = m.backbone.embeddings(pixel_values)
        stages["embeddings"] = embeddings
        features = m.backbone.forward_with_filtered_kwargs(pixel_values).feature_maps
        for i, f in enumerate(features):
            stages[f"feature_map_{i}"] = f
        _, _, height, width = pixel_values.shape
        ph, pw = height // m.config.patch_size, width // m.config.patch_size
        reassembled = m.neck.reassemble_stage(list(features), ph, pw)
        for i, r in enumerate(reassembled):
            stages[f"reassembled_{i}"] = r
        fused = m.neck(list(features), ph, pw)
        for i, f in enumerate(fused):
            stages[f"neck_{i}"] = f
        predicted = m.head(fused, ph, pw)
        stages["predicted_depth"] = predicted
        whole = m(pixel_values).predicted_depth
        assert torch.equal(whole, predicted), "the stage-by-stage run differs from model(pixel_values)"
        outputs = types.SimpleNamespace(predicted_depth=predicted)
        resized = processor.post_process_depth_estimation(outputs, target_sizes=[(image.height, image.width)])[0]["predicted_depth"]
        stages["depth_resized"] = resized
    stages["depth_map"] = pipeline_map(resized.numpy())
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in stages.items()}


CALLS = {
    "input_rgb": "np.asarray(Image.open(source).convert('RGB')): the decoded input, uint8 [H, W, 3] (not stored: sha256 of its bytes)",
    "pixel_values": "DPTImageProcessor(**preprocessor_config)(images=image, return_tensors='pt').pixel_values",
    "embeddings": "model.backbone.embeddings(pixel_values): CLS + patch tokens + interpolated position embeddings",
    "feature_map_": "model.backbone(pixel_values).feature_maps[i]: hidden state at out_indices[i] (after backbone.layernorm when apply_layernorm)",
    "reassembled_": "model.neck.reassemble_stage(feature_maps, ph, pw)[i]: projection + resize (ConvTranspose / Identity / strided Conv)",
    "neck_": "model.neck(feature_maps, ph, pw)[i]: fusion stage output i (fused from the deepest map up)",
    "predicted_depth": "model.head(neck outputs, ph, pw) == model(pixel_values).predicted_depth",
    "depth_resized": "processor.post_process_depth_estimation(outputs, target_sizes=[(H, W)])[0]['predicted_depth']: F.interpolate(bicubic, align_corners=False)",
    "depth_map": "pipelines/depth_estimation.py postprocess: ((d - d.min()) / (d.max() - d.min()) * 255).astype('uint8') on depth_resized",
}


def call_of(stage):
    return next(text for key, text in CALLS.items() if stage == key or (key.endswith("_") and stage.startswith(key)))


def gap(a32, a64):
    a32 = a32.astype(np.float64)
    diff = np.abs(a32 - a64)
    scale = float(np.max(np.abs(a64))) if a64.size else 0.0
    return {"max_abs": float(diff.max()), "max_abs_over_max_ref": float(diff.max() / scale) if scale > 0 else 0.0, "max_ref": scale}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", required=True, help="folder with the transformers 4.57.6 wheel (and its pure-Python dependencies) unzipped")
    args = parser.parse_args()
    transformers = prepare_transformers(args.site)
    assert transformers.__version__ == "4.57.6", transformers.__version__
    torch.set_num_threads(1)

    os.makedirs(os.path.join(OUT, "inputs"), exist_ok=True)
    Image.open(os.path.join(ROOT, CROP_SOURCE)).convert("RGB").crop(CROP_BOX).save(os.path.join(OUT, "inputs/cat-01-crop.png"))

    manifest = {
        "purpose": "Depth Anything V2 references (tiny random models); made by scripts/reference-depth-anything.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__, "pillow": PIL.__version__, "transformers": transformers.__version__},
        "stubs": "huggingface_hub placeholder package; torch reported as 2.1.0 to transformers' version check; torch-2 names added to torch 1.13 "
        "(torch.compiler, torch._dynamo, pytree.register_pytree_node, float8/uint16-64 dtype names, distributed.is_available -> False); "
        "attention as transformers' 'eager' implementation (torch 1.13 has no SDPA). See the script's docstring.",
        "convention": "ControlNet depth map = transformers 4.57.6 depth-estimation pipeline 'depth': bicubic (align_corners=False) resize of predicted_depth to the "
        "image size, ((d - min) / (max - min) * 255).astype('uint8') in float32 (truncation), replicated to 3 channels by the caller",
        "tolerance_rule": "per float stage: max|ours - ref32| <= 4 * max|ref32 - ref64| + 1e-6 * max|ref64| (the float32 rounding of a run, with a floor of a few ulps "
        "for stages whose float32 and float64 runs happen to agree); pixel_values exactly; depth_map: no pixel more than 1 level off, and at most "
        "max(4 * (share of pixels where ref32 and ref64 differ), 0.5 %) of the pixels 1 level off",
        "inputs": {"cat-01-crop.png": {"source": CROP_SOURCE, "source_sha256": sha256(os.path.join(ROOT, CROP_SOURCE)), "call": f"Image.open(source).convert('RGB').crop({CROP_BOX}).save(...)",
                                       "licence": "CC-BY 4.0 (DreamBooth dataset, see test/fixtures/dreambench/LICENSE.md)", "sha256": sha256(os.path.join(OUT, 'inputs/cat-01-crop.png'))}},
        "models": {},
        "cases": {},
    }

    for spec, case_names in [(TINY, [c[0] for c in CASES]), (HELD_OUT, HELD_OUT_CASES)]:
        model = build_model(transformers, spec)
        processor = transformers.DPTImageProcessor(
            do_resize=True, size=spec["processor"]["size"], keep_aspect_ratio=True, ensure_multiple_of=spec["processor"]["ensure_multiple_of"],
            resample=PIL.Image.BICUBIC, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
            image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_pad=False,
        )
        folder = os.path.join(OUT, spec["name"])
        save_model(model, processor, folder)
        manifest["models"][spec["name"]] = {
            "files": {f: sha256(os.path.join(folder, f)) for f in ["config.json", "model.safetensors", "preprocessor_config.json"]},
            "call": "DepthAnythingForDepthEstimation(DepthAnythingConfig(backbone_config=Dinov2Config(**backbone_config), **depth)), every parameter re-drawn by randomise(seed)",
            "spec": spec,
            "parameters": int(sum(p.numel() for p in model.parameters())),
        }
        for case in case_names:
            source = dict(CASES)[case]
            image = Image.open(os.path.join(ROOT, source)).convert("RGB")
            ref32 = run_stages(model, processor, image, torch.float32)
            ref64 = run_stages(model, processor, image, torch.float64)
            model.float()
            # The pipeline itself, end to end: its 'depth' image is the same map.
            pipe = transformers.DepthEstimationPipeline(model=model, image_processor=processor)
            piped = np.asarray(pipe(image)["depth"])
            assert np.array_equal(piped, ref32["depth_map"]), "the depth-estimation pipeline's map differs"

            case_dir = os.path.join(OUT, "cases", spec["name"], case)
            os.makedirs(case_dir, exist_ok=True)
            files = {}
            rgb = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
            files["input_rgb"] = {"shape": list(rgb.shape), "dtype": "uint8", "call": call_of("input_rgb"), "sha256": hashlib.sha256(rgb.tobytes()).hexdigest(), "stored": False}
            for stage, array in ref32.items():
                if stage == "depth_resized" and f"{spec['name']}/{case}" not in RESIZED_KEPT:
                    continue
                path = os.path.join(case_dir, f"{stage}.npy")
                np.save(path, np.ascontiguousarray(array))
                entry = {"shape": list(array.shape), "dtype": str(array.dtype), "call": call_of(stage), "sha256": sha256(path)}
                if stage != "depth_map":
                    entry["float64_gap"] = gap(array, ref64[stage])
                files[f"{stage}.npy"] = entry
            if "depth_resized.npy" not in files:
                files["depth_resized (not stored)"] = {"shape": list(ref32["depth_resized"].shape), "call": call_of("depth_resized"), "float64_gap": gap(ref32["depth_resized"], ref64["depth_resized"])}
            differing = int(np.count_nonzero(ref32["depth_map"] != ref64["depth_map"]))
            files["depth_map.npy"]["float64_gap"] = {
                "pixels_differing": differing,
                "share_differing": differing / ref32["depth_map"].size,
                "max_level_difference": int(np.max(np.abs(ref32["depth_map"].astype(np.int32) - ref64["depth_map"].astype(np.int32)))),
            }
            manifest["cases"][f"{spec['name']}/{case}"] = {
                "model": spec["name"],
                "source": source,
                "source_sha256": sha256(os.path.join(ROOT, source)),
                "image_size": [image.height, image.width],
                "files": files,
            }
            print(f"{spec['name']}/{case}: pixel_values {list(ref32['pixel_values'].shape)}, predicted_depth {list(ref32['predicted_depth'].shape)}, "
                  f"depth range {ref32['predicted_depth'].min():.4f}..{ref32['predicted_depth'].max():.4f}, map levels differing f32/f64: {differing}")

    # The DPT resize sizes at the real processor settings.
    real_processor = transformers.DPTImageProcessor(**{k: v for k, v in REAL_SMALL_PREPROCESSOR.items() if k != "image_processor_type"})
    from transformers.models.dpt.image_processing_dpt import get_resize_output_image_size

    manifest["resize_sizes"] = {
        "call": "get_resize_output_image_size(np.zeros((H, W, 3)), (518, 518), keep_aspect_ratio=True, multiple=14)",
        "cases": [{"input": [h, w], "output": list(get_resize_output_image_size(np.zeros((h, w, 3), np.uint8), (518, 518), True, 14, input_data_format="channels_last"))} for h, w in RESIZE_SIZES],
    }
    real_processor.to_json_file(os.path.join(OUT, "real-preprocessor-config-depth-anything-v2-small.json"))

    # The real checkpoint's key/shape list.
    real_config = transformers.DepthAnythingConfig(**{k: v for k, v in REAL_SMALL_CONFIG.items() if k not in ("architectures", "model_type", "transformers_version", "torch_dtype")})
    real_config._attn_implementation = "eager"
    real_model = transformers.DepthAnythingForDepthEstimation(real_config)
    state = real_model.state_dict()
    with open(os.path.join(OUT, "real-config-depth-anything-v2-small.json"), "w") as f:
        json.dump(REAL_SMALL_CONFIG, f, indent=1)
        f.write("\n")
    listing = {
        "model": "depth-anything/Depth-Anything-V2-Small-hf",
        "config_file": "real-config-depth-anything-v2-small.json",
        "class": "transformers.DepthAnythingForDepthEstimation",
        "made_by": "scripts/reference-depth-anything.py: DepthAnythingForDepthEstimation(DepthAnythingConfig(**config)).state_dict(), random init (nothing downloaded), transformers 4.57.6",
        "config_source": "convert_depth_anything_to_hf.py get_dpt_config('depth-anything-v2-small') as save_pretrained writes it (defaults omitted)",
        "config": REAL_SMALL_CONFIG,
        "parameters": int(sum(t.numel() for t in state.values())),
        "tensors": [{"name": name, "dtype": "F32", "shape": list(t.shape)} for name, t in state.items()],
    }
    with open(os.path.join(OUT, "real-shapes-depth-anything-v2-small.json"), "w") as f:
        json.dump(listing, f, indent=1)
        f.write("\n")
    manifest["real_shapes"] = {"file": "real-shapes-depth-anything-v2-small.json", "tensors": len(state), "parameters": listing["parameters"]}

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: real checkpoint {len(state)} tensors, {listing['parameters']} parameters")


if __name__ == "__main__":
    main()

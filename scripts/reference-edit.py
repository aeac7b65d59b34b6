#!/usr/bin/python3
"""Golden fixtures for subject-driven editing (main/engine/pipelines/invert.ts, edit.ts,
schedulers/ddim-inverse.ts, imaging/paste-back.ts); the algorithm is summarised in docs/edit-reference.md.

No edit kit ships, so this script computes the reference with diffusers 0.25.1's own classes on the parity
kit's tiny model (test/fixtures/parity/models/tiny-blipdiffusion), configured as LAVIS's BLIP-Diffusion
editing does (salesforce/LAVIS @ 506965b9, lavis/models/blip_diffusion_models/blip_diffusion.py: edit(),
_ddim_inverse(), _noise_latent_step(), generate_then_edit()):

  source      a DreamBench photo (test/fixtures/dreambench/dog/00.jpg), PIL bicubic resize of the shortest side
              to the output width + centre crop to H x W (LAVIS: Resize(512) + CenterCrop), saved as PNG; the
              PNG's bytes are THE source (x/255*2-1, as LAVIS's ToTensor()*2-1).
  encode      vae.encode(x).latent_dist.mean * scaling_factor. LAVIS samples (latent_dist.sample() with no
              generator: not reproducible); we take the mean (= mode), see docs/edit-reference.md.
  inversion   DDIMInverseScheduler(beta 0.00085..0.012 scaled_linear, clip_sample=False,
              set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading") = SD-1.5's DDIM config that
              LAVIS loads, run forwards over its ascending timesteps; guidance 1 (one UNet call, the plain
              prompt); prompt f"a {src_subject} {prompt}" encoded by the plain CLIP text encoder (no subject
              tokens, padded to 77). The script also runs LAVIS's closed-form backward_ddim and checks that
              it gives the same trajectory (it is the same formula).
  reconstruct DDIMScheduler(same config) from the last inverted latent with the inversion's conditioning,
              guidance 1, no mask.
  edit        DDIMScheduler(same config) from the last inverted latent, CFG 7.5 with [uncond, cond] = the
              parity kit's own text embeddings (blip/uncond_text_embeddings.npy, blip/cond_text_embeddings.npy:
              the kit's prompt "swimming underwater", target "puppy", subject = the kit's reference photo,
              reps 20), and after step i (of N) the latents outside the latent mask are replaced by the
              inverted trajectory's latent at the same noise level, trajectory[N-1-i] (trajectory[0] = the
              encoded latents): x = x_traj + m * (x - x_traj), m the latent mask.
  masks       painted mask (mask.png, 0/255) -> feathered: m = p * boxblur_r(p) (separable box blur, radius
              FEATHER, edge-clamped, float64; zero wherever nothing was painted). Latent mask: 1 where the
              max of the feathered mask over the latent cell's f x f pixels is > 0, else 0.
  paste-back  out = round_half_up(orig * (1 - m) + edited * m) on uint8 RGB, edited = the decoded image as
              diffusers' numpy_to_pil makes bytes (round(clamp(x/2+0.5, 0, 1) * 255)); m = 0 gives the
              original bytes exactly.

Everything is run in float32 and again in float64 (models .double(), inputs cast); the per-stage largest
|f32 - f64| go into test/fixtures/edit/manifest.json with the tolerance rule the tests use.

Versions: Debian 12's /usr/bin/python3 (3.11.2), python3-torch 1.13.0a0 (CPU), python3-numpy 1.24.2,
python3-pil 9.4.0; diffusers 0.25.1 (git tag v0.25.1 of huggingface/diffusers, src/ on PYTHONPATH, not
installed); transformers 4.57.6 (wheel, for the CLIP text encoder and tokenizer that diffusers' BLIP-Diffusion
ContextCLIPTextModel builds on; with no subject tokens, as the inversion encodes, ContextCLIPTextModel is
transformers' CLIPTextModel, which is what runs here because diffusers 0.25.1's ContextCLIPTextModel passes
arguments that transformers 4.57's CLIPEncoder no longer takes; the kit's uncond embedding is reproduced as a check) with the wheels filelock 4.0.8, packaging 26.3, pyyaml 6.0.3,
regex 2026.9.29, tqdm 4.70.1, safetensors 0.8.0, tokenizers 0.22.2, typing_extensions 4.16.0 unzipped into
one folder.

Stubs: exactly those of scripts/reference-depth-anything.py's prepare_transformers (imported from there):
an offline placeholder huggingface_hub, torch reported as 2.1.0 to transformers' version check, and the
torch-2 names (torch.compiler, torch._dynamo, pytree.register_pytree_node, dtype names) added to torch 1.13.
Because the placeholder huggingface_hub turns `validate_hf_hub_args`-decorated `from_pretrained` into
dummies, models are built with `from_config` / the config class and their safetensors loaded with
`load_state_dict` (strict; only the text encoder's non-persistent `position_ids` buffer is dropped). The
subject embedding is not recomputed: the kit's cond/uncond text embeddings are used in float32 and, for the
float64 run, cast to float64 (the kit already pins those stages).

Run (from the repository root):
  mkdir -p /tmp/edit-site && for w in <the wheels above>; do unzip -q -o "$w" -d /tmp/edit-site; done
  mkdir -p /tmp/diffusers-0.25.1 && git -C <diffusers clone> archive v0.25.1 src/diffusers | tar -x -C /tmp/diffusers-0.25.1
  /usr/bin/python3 scripts/reference-edit.py --site /tmp/edit-site --diffusers /tmp/diffusers-0.25.1/src
"""
import argparse
import importlib.util
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIT = os.path.join(ROOT, "test/fixtures/parity")
MODEL = os.path.join(KIT, "models/tiny-blipdiffusion")
OUT = os.path.join(ROOT, "test/fixtures/edit")

HEIGHT, WIDTH = 48, 32
STEPS = 10
GUIDANCE = 7.5
SRC_SUBJECT = "dog"
PROMPT = "swimming underwater"
FEATHER = 3
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    timestep_spacing="leading",
    prediction_type="epsilon",
)


def load_reference_modules(site, diffusers_src):
    spec = importlib.util.spec_from_file_location("reference_depth_anything", os.path.join(ROOT, "scripts/reference-depth-anything.py"))
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    transformers = helper.prepare_transformers(site)
    sys.path.insert(0, diffusers_src)
    import diffusers

    assert diffusers.__version__ == "0.25.1", diffusers.__version__
    assert transformers.__version__ == "4.57.6", transformers.__version__
    return diffusers, transformers


def read_json(path):
    with open(path) as f:
        return json.load(f)


def load_models(diffusers, transformers):
    from safetensors.torch import load_file
    from diffusers.models import AutoencoderKL, UNet2DConditionModel

    unet = UNet2DConditionModel.from_config(read_json(os.path.join(MODEL, "unet/config.json")))
    unet.load_state_dict(load_file(os.path.join(MODEL, "unet/diffusion_pytorch_model.safetensors")), strict=True)
    vae = AutoencoderKL.from_config(read_json(os.path.join(MODEL, "vae/config.json")))
    vae.load_state_dict(load_file(os.path.join(MODEL, "vae/diffusion_pytorch_model.safetensors")), strict=True)
    text_config = transformers.CLIPTextConfig(**{k: v for k, v in read_json(os.path.join(MODEL, "text_encoder/config.json")).items() if not k.startswith("_")})
    text_config._attn_implementation = "eager"
    text_encoder = transformers.CLIPTextModel(text_config)
    state = load_file(os.path.join(MODEL, "text_encoder/model.safetensors"))
    missing, unexpected = text_encoder.load_state_dict(state, strict=False)
    assert not missing and set(unexpected) <= {"text_model.embeddings.position_ids"}, (missing, unexpected)
    tok = read_json(os.path.join(MODEL, "tokenizer/tokenizer_config.json"))
    tokenizer = transformers.CLIPTokenizer(
        os.path.join(MODEL, "tokenizer/vocab.json"),
        os.path.join(MODEL, "tokenizer/merges.txt"),
        bos_token=tok["bos_token"],
        eos_token=tok["eos_token"],
        pad_token=tok["pad_token"],
        unk_token=tok["unk_token"],
        model_max_length=77,
    )
    for m in (unet, vae, text_encoder):
        m.eval()
    return unet, vae, text_encoder, tokenizer


def make_source():
    photo = Image.open(os.path.join(ROOT, "test/fixtures/dreambench/dog/00.jpg")).convert("RGB")
    scale = max(WIDTH / photo.width, HEIGHT / photo.height)
    size = (max(WIDTH, round(photo.width * scale)), max(HEIGHT, round(photo.height * scale)))
    resized = photo.resize(size, Image.BICUBIC)
    left, top = (size[0] - WIDTH) // 2, (size[1] - HEIGHT) // 2
    return resized.crop((left, top, left + WIDTH, top + HEIGHT))


def make_painted_mask():
    """A painted blob: a filled ellipse in the upper middle (0/255)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    inside = ((xx - 15.5) / 9.0) ** 2 + ((yy - 18.5) / 11.0) ** 2 <= 1.0
    return (inside * 255).astype(np.uint8)


def box_blur(a, r):
    """Separable box blur of radius r (window 2r+1), edges clamped, float64: rows then columns."""
    out = a.astype(np.float64)
    for axis in (1, 0):
        n = out.shape[axis]
        idx = np.arange(n)
        acc = np.zeros_like(out)
        for d in range(-r, r + 1):
            j = np.clip(idx + d, 0, n - 1)
            acc += np.take(out, j, axis=axis)
        out = acc / (2 * r + 1)
    return out


def feather(painted, r):
    p = painted.astype(np.float64) / 255.0
    return p * box_blur(p, r)


def latent_mask(mask, factor):
    h, w = mask.shape[0] // factor, mask.shape[1] // factor
    cells = mask.reshape(h, factor, w, factor).max(axis=(1, 3))
    return (cells > 0).astype(np.float64)


def round_half_up(x):
    return np.floor(x + 0.5)


@torch.no_grad()
def run(models, dtype, schedulers, pixels_u8, mask_lat, mask_px, kit_cond, kit_uncond):
    unet, vae, text_encoder, tokenizer = models
    unet, vae, text_encoder = (m.to(dtype) for m in (unet, vae, text_encoder))
    DDIMScheduler, DDIMInverseScheduler = schedulers
    stages = {}

    # Inversion conditioning: LAVIS _ddim_inverse: _build_prompt(reps=1), _tokenize_text(with_query=False) -> 77.
    inv_prompt = f"a {SRC_SUBJECT} {PROMPT}"
    ids = tokenizer([inv_prompt], padding="max_length", truncation=True, max_length=77, return_tensors="pt").input_ids
    stages["inversion_input_ids"] = ids.numpy().astype(np.int64)
    # transformers 4.57 builds the causal mask with torch.full(finfo(dtype).min) in the default dtype.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    inv_emb = text_encoder(input_ids=ids)[0]
    torch.set_default_dtype(previous)
    stages["inversion_text_embeddings"] = inv_emb

    # Encode (mean of the posterior).
    x = torch.from_numpy(pixels_u8.astype(np.float64) / 255.0).permute(2, 0, 1)[None].to(dtype) * 2.0 - 1.0
    stages["source_pixel_values"] = x
    latents0 = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    stages["latents0"] = latents0

    # DDIM inversion.
    inverse = DDIMInverseScheduler(**SCHEDULER_CONFIG)
    inverse.set_timesteps(STEPS)
    stages["inversion_timesteps"] = inverse.timesteps.numpy().astype(np.int64)
    trajectory = [latents0]
    lat = latents0
    for t in inverse.timesteps:
        eps = unet(lat, t, encoder_hidden_states=inv_emb).sample
        lat = inverse.step(eps, t, lat).prev_sample
        trajectory.append(lat)
    stages["trajectory"] = torch.cat(trajectory)  # [N+1, C, h, w]

    # LAVIS's own closed form (backward_ddim with swapped alphas) gives the same trajectory.
    ddim = DDIMScheduler(**SCHEDULER_CONFIG)
    ddim.set_timesteps(STEPS)
    lat = latents0
    for i, t in enumerate(reversed(ddim.timesteps)):
        eps = unet(lat, t, encoder_hidden_states=inv_emb).sample
        prev_t = t - ddim.config.num_train_timesteps // ddim.num_inference_steps
        a_prev = ddim.alphas_cumprod[t]
        a_t = ddim.alphas_cumprod[prev_t] if prev_t >= 0 else ddim.final_alpha_cumprod
        a_t, a_prev = a_t.to(dtype), a_prev.to(dtype)
        lat = a_prev**0.5 * ((a_t**-0.5 - a_prev**-0.5) * lat + ((1 / a_prev - 1) ** 0.5 - (1 / a_t - 1) ** 0.5) * eps) + lat
        gap = (lat - trajectory[i + 1]).abs().max().item()
        assert gap <= 1e-4, f"LAVIS backward_ddim differs at step {i}: {gap}"

    # Reconstruction: DDIM from the last inverted latent, same conditioning, guidance 1, no mask.
    ddim = DDIMScheduler(**SCHEDULER_CONFIG)
    ddim.set_timesteps(STEPS)
    stages["denoise_timesteps"] = ddim.timesteps.numpy().astype(np.int64)
    lat = trajectory[-1]
    recon = []
    for t in ddim.timesteps:
        eps = unet(lat, t, encoder_hidden_states=inv_emb).sample
        lat = ddim.step(eps, t, lat).prev_sample
        recon.append(lat)
    stages["reconstruction_latents_after_each_step"] = torch.cat(recon)
    stages["reconstruction_image"] = (vae.decode(lat / vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)

    # Masked subject-driven edit.
    ddim = DDIMScheduler(**SCHEDULER_CONFIG)
    ddim.set_timesteps(STEPS)
    text = torch.cat([kit_uncond, kit_cond]).to(dtype)
    m = torch.from_numpy(mask_lat)[None, None].to(dtype)
    lat = trajectory[-1]
    edit = []
    for i, t in enumerate(ddim.timesteps):
        noise = unet(torch.cat([lat] * 2), t, encoder_hidden_states=text).sample
        uncond, cond = noise.chunk(2)
        noise = uncond + GUIDANCE * (cond - uncond)
        lat = ddim.step(noise, t, lat).prev_sample
        source = trajectory[STEPS - 1 - i]
        lat = source + m * (lat - source)
        edit.append(lat)
    stages["edit_latents_after_each_step"] = torch.cat(edit)
    raw = vae.decode(lat / vae.config.scaling_factor).sample
    stages["edit_vae_decoded"] = raw
    image = (raw / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
    stages["edit_image"] = image
    edited_u8 = np.round(image[0].double().numpy() * 255.0)  # numpy_to_pil: (x * 255).round().astype(uint8)
    mf = mask_px[:, :, None]
    pasted = round_half_up(pixels_u8.astype(np.float64) * (1.0 - mf) + edited_u8 * mf)
    stages["edit_image_u8"] = edited_u8.astype(np.uint8)
    stages["pasted"] = pasted.astype(np.uint8)
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in stages.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", required=True)
    parser.add_argument("--diffusers", required=True)
    args = parser.parse_args()
    diffusers, transformers = load_reference_modules(args.site, args.diffusers)
    from diffusers.schedulers import DDIMInverseScheduler, DDIMScheduler

    torch.manual_seed(0)
    models = load_models(diffusers, transformers)
    os.makedirs(OUT, exist_ok=True)

    source = make_source()
    source.save(os.path.join(OUT, "source.png"))
    pixels_u8 = np.asarray(Image.open(os.path.join(OUT, "source.png")).convert("RGB"))
    painted = make_painted_mask()
    Image.fromarray(painted, mode="L").save(os.path.join(OUT, "mask.png"))
    painted = np.asarray(Image.open(os.path.join(OUT, "mask.png")))
    mask_px = feather(painted, FEATHER)
    factor = 2 ** (len(read_json(os.path.join(MODEL, "unet/config.json"))["block_out_channels"]) - 1)
    mask_lat = latent_mask(mask_px, factor)

    kit_cond = torch.from_numpy(np.load(os.path.join(KIT, "blip/cond_text_embeddings.npy")))
    kit_uncond = torch.from_numpy(np.load(os.path.join(KIT, "blip/uncond_text_embeddings.npy")))
    # The text encoder as loaded here reproduces the kit's uncond embedding (a check on the loading).
    unet, vae, text_encoder, tokenizer = models
    with torch.no_grad():
        uncond_ids = tokenizer([""], padding="max_length", max_length=77, return_tensors="pt").input_ids
        assert np.array_equal(uncond_ids.numpy(), np.load(os.path.join(KIT, "blip/uncond_input_ids.npy"))), "tokenizer differs from the kit"
        gap = (text_encoder(input_ids=uncond_ids)[0] - kit_uncond).abs().max().item()
        assert gap <= 1e-6, f"text encoder differs from the kit: {gap}"

    f32 = run(models, torch.float32, (DDIMScheduler, DDIMInverseScheduler), pixels_u8, mask_lat, mask_px, kit_cond, kit_uncond)
    f64 = run(models, torch.float64, (DDIMScheduler, DDIMInverseScheduler), pixels_u8, mask_lat, mask_px, kit_cond, kit_uncond)

    files = {}

    def save(name, array, produced_by):
        np.save(os.path.join(OUT, f"{name}.npy"), array)
        files[f"{name}.npy"] = {"shape": list(array.shape), "dtype": str(array.dtype), "produced_by": produced_by}

    save("source_u8", pixels_u8, "source.png decoded by PIL convert('RGB'), [H, W, 3] uint8")
    save("mask_feathered", mask_px.astype(np.float32), f"mask.png/255 = p; p * boxblur_{FEATHER}(p) (float64, saved as float32) [H, W]")
    save("mask_latent", mask_lat.astype(np.float32), "1 where the max of mask_feathered over the latent cell is > 0 [h, w]")
    descriptions = {
        "inversion_input_ids": "tokenizer(f'a {src} {prompt}', padding='max_length', truncation=True, max_length=77)",
        "inversion_text_embeddings": "CLIPTextModel(ids)[0] (= ContextCLIPTextModel with ctx_embeddings=None)",
        "source_pixel_values": "source_u8 / 255 * 2 - 1, NCHW",
        "latents0": "vae.encode(x).latent_dist.mean * scaling_factor",
        "inversion_timesteps": "DDIMInverseScheduler(SCHEDULER_CONFIG).set_timesteps(steps).timesteps (ascending)",
        "trajectory": "[latents0, after inverse step 1, ..., after inverse step N], guidance 1",
        "denoise_timesteps": "DDIMScheduler(SCHEDULER_CONFIG).set_timesteps(steps).timesteps (descending)",
        "reconstruction_latents_after_each_step": "DDIM from trajectory[N], inversion conditioning, guidance 1, no mask",
        "reconstruction_image": "(vae.decode(last / sf) / 2 + 0.5).clamp(0, 1) NHWC",
        "edit_latents_after_each_step": "DDIM + CFG 7.5 with the kit's [uncond, cond], then x = traj[N-1-i] + m_lat * (x - traj[N-1-i])",
        "edit_vae_decoded": "vae.decode(last / sf).sample (raw, NCHW)",
        "edit_image": "(edit_vae_decoded / 2 + 0.5).clamp(0, 1) NHWC",
        "edit_image_u8": "round(edit_image * 255) (numpy_to_pil)",
        "pasted": "round_half_up(source_u8 * (1 - m) + edit_image_u8 * m), m = mask_feathered",
    }
    # Stand-alone scheduler sequences (no model): DDIMInverseScheduler.step on fixed N(0, 1) draws.
    inv50 = DDIMInverseScheduler(**SCHEDULER_CONFIG)
    inv50.set_timesteps(50)
    save("scheduler_inverse_timesteps_50", inv50.timesteps.numpy().astype(np.int64), "DDIMInverseScheduler(SCHEDULER_CONFIG).set_timesteps(50).timesteps (LAVIS's 50 inversion steps)")
    generator = torch.Generator().manual_seed(7)
    sample = torch.randn((1, 4, 6, 5), generator=generator)
    outputs = torch.randn((STEPS, 1, 4, 6, 5), generator=generator)
    inv = DDIMInverseScheduler(**SCHEDULER_CONFIG)
    inv.set_timesteps(STEPS)
    steps_out, alphas = [], []
    x = sample
    for i, t in enumerate(inv.timesteps):
        before = int(t) - SCHEDULER_CONFIG["num_train_timesteps"] // STEPS
        alphas.append([float(inv.alphas_cumprod[before]) if before >= 0 else float(inv.initial_alpha_cumprod), float(inv.alphas_cumprod[int(t)])])
        x = inv.step(outputs[i], t, x).prev_sample
        steps_out.append(x)
    save("scheduler_sample", sample.numpy(), "torch.randn((1, 4, 6, 5), generator=torch.Generator().manual_seed(7))")
    save("scheduler_model_outputs", outputs.numpy(), "torch.randn((N, 1, 4, 6, 5)) from the same generator, after the sample")
    save("scheduler_prev_samples", torch.stack(steps_out).numpy(), "DDIMInverseScheduler.step(model_outputs[i], timesteps[i], x).prev_sample for i in 0..N-1")
    save("scheduler_alphas", np.array(alphas, dtype=np.float32), "per step [alpha_prod_t (the level stepped from), alpha_prod_t_prev (the level stepped to)] as float32")

    gaps = {}
    for name, produced_by in descriptions.items():
        a = f32[name]
        save(name, a.astype(np.float32) if a.dtype == np.float64 else a, produced_by)
        if a.dtype.kind == "f" or name in ("pasted", "edit_image_u8"):
            gaps[name] = float(np.abs(a.astype(np.float64) - f64[name].astype(np.float64)).max())
        else:
            assert np.array_equal(a, f64[name]), name
    # Per step gaps (the trajectory drifts step by step).
    gaps_per_step = {
        "trajectory": [float(np.abs(f32["trajectory"][i].astype(np.float64) - f64["trajectory"][i]).max()) for i in range(STEPS + 1)],
        "edit_latents_after_each_step": [float(np.abs(f32["edit_latents_after_each_step"][i].astype(np.float64) - f64["edit_latents_after_each_step"][i]).max()) for i in range(STEPS)],
    }
    floor = 1e-5
    tolerances = {name: max(4 * gap, floor) for name, gap in gaps.items() if name not in ("pasted", "edit_image_u8")}
    manifest = {
        "purpose": "reference for DDIM inversion, reconstruction and the painted-mask subject-driven edit (docs/edit-reference.md)",
        "generator": "scripts/reference-edit.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__, "PIL": Image.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__},
        "model": "test/fixtures/parity/models/tiny-blipdiffusion",
        "run": {
            "height": HEIGHT,
            "width": WIDTH,
            "steps": STEPS,
            "guidance_scale": GUIDANCE,
            "inversion_guidance_scale": 1.0,
            "source_subject": SRC_SUBJECT,
            "prompt": PROMPT,
            "edit_conditioning": "parity kit blip/uncond_text_embeddings.npy + blip/cond_text_embeddings.npy (prompt 'swimming underwater', target 'puppy', kit reference photo, subject 'dog', reps 20, negative '')",
            "scheduler_config": SCHEDULER_CONFIG,
            "feather_radius": FEATHER,
            "latent_factor": factor,
            "source": "test/fixtures/dreambench/dog/00.jpg, shortest side to fit W x H with PIL BICUBIC, centre crop; source.png",
            "mask": "mask.png (painted ellipse, 0/255)",
        },
        "float32_vs_float64_max_abs_gap": gaps,
        "float32_vs_float64_max_abs_gap_per_step": gaps_per_step,
        "tolerance_rule": "an implementation in float32 on the CPU provider must match each float-valued stage within max(4 x the f32-vs-f64 gap of that stage, 1e-5) (max abs); on WebGPU (coarser shader arithmetic, measured ~20x the CPU's error) within max(that, 64 x the gap); the uint8 images within 1 (rounding of values at .5 after float differences); pasted must equal source_u8 exactly where mask_feathered == 0",
        "tolerances": tolerances,
        "files": files,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps(gaps, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Golden fixtures for "propose mask from word" (issue 14): LAVIS's AttentionStore + LocalBlend on the tiny kit UNet.

The reference is LAVIS's editing code (salesforce/LAVIS @ 506965b9, lavis/models/blip_diffusion_models/
ptp_utils.py: AttentionControl, AttentionStore, LocalBlend, get_word_inds, P2PCrossAttnProcessor;
blip_diffusion.py: _register_attention_control, generate_then_edit, _build_prompts_edit, _tokenize_text,
ddim_scheduler) run on diffusers 0.25.1's UNet2DConditionModel (git tag v0.25.1, its AttnProcessor).
What LAVIS does, and what is reproduced here:
  * every attention processor of the UNet (down/mid/up, attn1 and attn2) calls the controller with the
    attention probabilities softmax(QK^T/sqrt(d)) [batch*heads, queries, keys]; with CFG only the
    conditional half (attn[h//2:]) is stored; maps with more than 32**2 queries are not stored;
  * between steps the per-step maps are SUMMED into attention_store (LocalBlend reads the running sum);
  * LocalBlend (called after every denoising step): maps = down_cross[2:4] + up_cross[:3] (for SD-1.5 at
    512x512: down_blocks.2 (2 layers) and up_blocks.1 (3 layers), the five 16x16 cross-attention layers;
    mid is never used), reshaped (prompts, heads, 1, 16, 16, 77), concatenated over layers, times the
    word-token indicator alpha, summed over tokens, mean over heads x layers; max_pool2d 3x3 stride 1 pad 1
    (k = 1); F.interpolate to the latent size (mode nearest); divided by its max over H, W; > threshold
    (0.3 by default); the mask of prompt 0 (the source prompt, the only one with word alpha) is the mask;
  * token indices: get_word_inds(prompt, word, tokenizer) (copied verbatim below): words = prompt.split(" "),
    the word's positions, then CLIP tokens of the prompt decoded one by one (strip "#"), lengths
    accumulated until a word is covered; index + 1 for BOS. The source prompt f"a {src_subject} {prompt}" is
    encoded WITHOUT the 16 query tokens (plain text encoder, padded/truncated to 77), so no offset applies.
Generalisation (LAVIS hard-codes 16x16 and the list slices, so it only runs at 512x512 on SD-1.5):
  the layers are "the cross-attention layers of the down and up blocks at the coarsest down-path level that
  has cross-attention" (SD-1.5 at 512: exactly LAVIS's five 16x16 layers). The tiny kit UNet (blocks
  [CrossAttnDownBlock2D, DownBlock2D]) gives down_blocks.0.attentions.0 and up_blocks.1.attentions.{0,1}
  at the full 24x16 latent. A second layer set, the mid block alone (12x8), exercises the nearest resize.

The run (LAVIS edit()'s source branch, which is what the mask comes from): source prompt
"a dog swimming underwater" (src_subject "dog", prompt "swimming underwater"), plain CLIP text encoder, 77
tokens; guidance 1 (the source branch of edit() uses the unguided conditional prediction noise_pred[2];
attention maps of one row do not depend on the other rows, so batch 1 gives LAVIS's maps); LAVIS's
ddim_scheduler (SD-1.5 config: scaled_linear 0.00085..0.012, steps_offset 1, clip_sample False,
set_alpha_to_one False), 3 steps, starting from the kit's inputs/initial_latents.npy (standing in for the
DDIM-inverted latent). Words: "dog" (LAVIS's src_subject, 1 token) and "underwater" (4 tiny-BPE tokens).
Image size 48x32 (latent 24x16); the image-size mask is the latent mask repeated nearest x2 (our addition:
LAVIS applies the mask to latents only).

Everything is rerun in float64 (unet.double(), embeddings and latents float64); manifest.json gives the
largest float32-vs-float64 gaps per stage and the tolerance rule (4 x gap + floor), and, for the binary
masks, how many reference pixels lie within that tolerance of the threshold (= the flips allowed).

Versions: Debian 12's /usr/bin/python3 (3.11.2), python3-torch 1.13.0a0 (CPU), python3-numpy 1.24.2;
diffusers 0.25.1 source (git archive v0.25.1 of huggingface/diffusers, src/ on PYTHONPATH); transformers
4.57.6 wheel (+ its pure-Python dependencies, unzipped, nothing installed) for CLIPTokenizer and
CLIPTextModel. Stubs: those of scripts/reference-depth-anything.py (prepare_transformers: a placeholder
huggingface_hub, torch reported as 2.1.0, torch-2 names added to torch 1.13), plus
huggingface_hub.validate_hf_hub_args = identity (diffusers' from_pretrained decorator). The text encoder is
transformers' CLIPTextModel with eager attention (= diffusers' ContextCLIPTextModel with ctx_embeddings=None,
which does not run on transformers 4.57's CLIPEncoder API); its uncond embedding matches the kit's
blip/uncond_text_embeddings.npy to 7e-7. The weights are loaded from the kit's safetensors with
safetensors.numpy (the position_ids buffer dropped).

Run (from the repository root):
  mkdir -p /tmp/am-diffusers && git -C <diffusers git dir> archive v0.25.1 src | tar -x -C /tmp/am-diffusers
  mkdir -p /tmp/tf-site && for w in transformers-4.57.6-py3-none-any.whl <wheels of reference-depth-anything.py>; do unzip -q -o "$w" -d /tmp/tf-site; done
  /usr/bin/python3 scripts/reference-attention-mask.py --site /tmp/tf-site --diffusers /tmp/am-diffusers/src
"""
import argparse
import importlib.util
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIT = os.path.join(ROOT, "test/fixtures/parity")
MODEL = os.path.join(KIT, "models/tiny-blipdiffusion")
OUT = os.path.join(ROOT, "test/fixtures/edit-attention")

SRC_SUBJECT = "dog"
PROMPT = "swimming underwater"
WORDS = ["dog", "underwater"]
STEPS = 3
THRESHOLDS = [0.3, 0.7]  # LAVIS's default lb_threshold, and one that splits the tiny model's flat maps (lb_threshold is a parameter of edit())
POOL_K = 1
IMAGE_SIZE = (48, 32)
LAYER_SETS = {
    "local-blend": ["down_blocks.0.attentions.0.transformer_blocks.0.attn2", "up_blocks.1.attentions.0.transformer_blocks.0.attn2", "up_blocks.1.attentions.1.transformer_blocks.0.attn2"],
    "mid": ["mid_block.attentions.0.transformer_blocks.0.attn2"],
}


def get_word_inds(text: str, word_place: int, tokenizer):
    """LAVIS ptp_utils.get_word_inds, verbatim."""
    split_text = text.split(" ")
    if type(word_place) is str:
        word_place = [i for i, word in enumerate(split_text) if word_place == word]
    elif type(word_place) is int:
        word_place = [word_place]
    out = []
    if len(word_place) > 0:
        words_encode = [tokenizer.decode([item]).strip("#") for item in tokenizer.encode(text)][1:-1]
        cur_len, ptr = 0, 0

        for i in range(len(words_encode)):
            cur_len += len(words_encode[i])
            if ptr in word_place:
                out.append(i + 1)
            if cur_len >= len(split_text[ptr]):
                ptr += 1
                cur_len = 0
    return np.array(out)


def setup(site, diffusers_src):
    spec = importlib.util.spec_from_file_location("reference_depth_anything", os.path.join(ROOT, "scripts/reference-depth-anything.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    transformers = module.prepare_transformers(site)
    import huggingface_hub
    import huggingface_hub.utils

    for mod in (huggingface_hub, huggingface_hub.utils):
        mod.validate_hf_hub_args = lambda fn: fn
    sys.path.insert(0, diffusers_src)
    import diffusers

    return transformers, diffusers


class Store:
    """LAVIS AttentionStore restricted to what LocalBlend reads: cross maps (<= 32**2 queries), summed over steps."""

    def __init__(self):
        self.step = {}
        self.total = {}
        self.per_step = []

    def between_steps(self):
        self.per_step.append({k: v.clone() for k, v in self.step.items()})
        for k, v in self.step.items():
            self.total[k] = self.total[k] + v if k in self.total else v.clone()
        self.step = {}


def make_processor(AttnProcessor, store, name):
    class StoringProcessor(AttnProcessor):
        """diffusers 0.25.1 AttnProcessor; the probabilities of cross-attention go to the store (P2PCrossAttnProcessor's one-line change)."""

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, scale=1.0):
            original = attn.get_attention_scores
            is_cross = encoder_hidden_states is not None

            def scores(query, key, mask=None):
                probs = original(query, key, mask)
                if is_cross and probs.shape[1] <= 32**2:
                    store.step[name] = probs.detach().clone()  # [batch*heads, queries, 77]; batch 1 = the conditional row
                return probs

            attn.get_attention_scores = scores
            try:
                return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, scale)
            finally:
                del attn.get_attention_scores

    return StoringProcessor()


def local_blend(torch, maps_by_layer, layers, alpha, latent_hw, threshold):
    """LocalBlend.__call__ for one prompt, generalised from 16x16 to each layer's own grid (all selected layers share one grid)."""
    import torch.nn.functional as F

    grids = []
    for name in layers:
        probs = maps_by_layer[name]
        heads, queries, keys = probs.shape
        h, w = layer_grid(name, latent_hw)
        assert h * w == queries
        grids.append(probs.reshape(1, heads, 1, h, w, keys))
    maps = torch.cat(grids, dim=1)
    maps = (maps * alpha).sum(-1).mean(1)  # [1, 1, h, w]
    k = POOL_K
    pooled = F.max_pool2d(maps, (k * 2 + 1, k * 2 + 1), (1, 1), padding=(k, k))
    resized = F.interpolate(pooled, size=latent_hw)
    normalized = resized / resized.max(2, keepdims=True)[0].max(3, keepdims=True)[0]
    return maps[0, 0], pooled[0, 0], normalized[0, 0], normalized.gt(threshold)[0, 0]


def layer_grid(name, latent_hw):
    h, w = latent_hw
    return (h // 2, w // 2) if name.startswith("mid_block") else (h, w)


def run(dtype, transformers, diffusers):
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor
    from safetensors.numpy import load_file

    torch.set_default_dtype(dtype)  # transformers builds its causal mask in the default dtype
    tokenizer = transformers.CLIPTokenizer.from_pretrained(os.path.join(MODEL, "tokenizer"))
    config = transformers.CLIPTextConfig.from_pretrained(os.path.join(MODEL, "text_encoder"))
    config._attn_implementation = "eager"
    text_encoder = transformers.CLIPTextModel(config)
    weights = {k: torch.from_numpy(v) for k, v in load_file(os.path.join(MODEL, "text_encoder/model.safetensors")).items()}
    weights.pop("text_model.embeddings.position_ids")
    text_encoder.load_state_dict(weights, strict=True)
    text_encoder.eval()
    unet = UNet2DConditionModel.from_pretrained(os.path.join(MODEL, "unet"))
    unet.eval()
    if dtype == torch.float64:
        unet.double()
        text_encoder.double()

    source_prompt = f"a {SRC_SUBJECT} {PROMPT}"  # _build_prompts_edit(...)[0]
    ids = tokenizer([source_prompt], padding="max_length", truncation=True, max_length=77, return_tensors="pt").input_ids  # _tokenize_text(with_query=False)
    with torch.no_grad():
        embedding = text_encoder(input_ids=ids)[0]

    store = Store()
    unet.set_attn_processor({name: make_processor(AttnProcessor, store, name[: -len(".processor")]) for name in unet.attn_processors.keys()})
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    scheduler.set_timesteps(STEPS)
    latents = torch.from_numpy(np.load(os.path.join(KIT, "inputs/initial_latents.npy"))).to(dtype)
    latent_hw = tuple(latents.shape[2:])
    step_latents, step_predictions = [], []
    with torch.no_grad():
        for t in scheduler.timesteps:
            step_latents.append(latents.clone())
            noise = unet(latents, t, encoder_hidden_states=embedding).sample
            store.between_steps()
            step_predictions.append(noise.clone())
            latents = scheduler.step(noise, t, latents).prev_sample

    torch.set_default_dtype(torch.float32)
    result = {
        "source_prompt": source_prompt,
        "input_ids": ids.numpy(),
        "text_embedding": embedding.numpy(),
        "timesteps": scheduler.timesteps.numpy(),
        "step_latents": torch.cat(step_latents).numpy(),
        "step_noise_pred": torch.cat(step_predictions).numpy(),
        "words": {},
    }
    # Per layer and step: probabilities averaged over heads, all 77 tokens (what the probe graph outputs), stored for step 0 only (size).
    for name in LAYER_SETS["local-blend"] + LAYER_SETS["mid"]:
        result[f"probs_step0_headmean/{name}"] = store.per_step[0][name].mean(0).numpy()
    for word in WORDS:
        inds = get_word_inds(source_prompt, word, tokenizer)
        alpha = torch.zeros(1, 1, 1, 1, 1, 77, dtype=dtype)
        alpha[..., inds] = 1
        entry = {"token_indices": [int(i) for i in inds], "layer_sets": {}}
        for set_name, layers in LAYER_SETS.items():
            per_layer = np.stack([np.stack([store.per_step[s][name][:, :, inds].sum(-1).mean(0).numpy() for name in layers]) for s in range(STEPS)])
            accumulated = {name: None for name in layers}
            step_masks, step_normalized = [], []
            for s in range(STEPS):
                for name in layers:
                    accumulated[name] = store.per_step[s][name] if accumulated[name] is None else accumulated[name] + store.per_step[s][name]
                maps, pooled, normalized, _ = local_blend(torch, accumulated, layers, alpha, latent_hw, THRESHOLDS[0])
                step_masks.append(np.stack([normalized.gt(th).numpy().astype(np.uint8) for th in THRESHOLDS]))
                step_normalized.append(normalized.numpy())
            entry["layer_sets"][set_name] = {
                "word_maps_per_step_layer": per_layer,  # [steps, layers, queries]: sum over word tokens, mean over heads
                "aggregated": maps.numpy(),  # after the last step: sum over steps, mean over heads x layers [h, w]
                "pooled": pooled.numpy(),
                "normalized_per_step": np.stack(step_normalized),  # [steps, H, W] latent size
                "mask_per_step": np.stack(step_masks),  # [steps, thresholds, H, W] 0/1
            }
        result["words"][word] = entry
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", required=True)
    parser.add_argument("--diffusers", required=True)
    args = parser.parse_args()
    transformers, diffusers = setup(args.site, args.diffusers)
    import torch

    r32 = run(torch.float32, transformers, diffusers)
    r64 = run(torch.float64, transformers, diffusers)
    os.makedirs(OUT, exist_ok=True)
    files = {}
    gaps = {}

    def save(name, array, gap_of=None):
        path = os.path.join(OUT, name + ".npy")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, array)
        files[name + ".npy"] = {"shape": list(array.shape), "dtype": str(array.dtype)}
        if gap_of is not None:
            gaps[name + ".npy"] = float(np.abs(array.astype(np.float64) - gap_of).max())

    save("input_ids", r32["input_ids"].astype(np.int64))
    save("text_embedding", r32["text_embedding"], r64["text_embedding"])
    save("timesteps", r32["timesteps"].astype(np.int64))
    save("step_latents", r32["step_latents"], r64["step_latents"])
    save("step_noise_pred", r32["step_noise_pred"], r64["step_noise_pred"])
    for key in [k for k in r32 if k.startswith("probs_step0_headmean/")]:
        save(key.replace("probs_step0_headmean/", "probs_step0_headmean-"), r32[key], r64[key])
    floor = 1e-6
    rule = "tolerance = 4 x (largest float32-vs-float64 gap of that file) + 1e-6; binary masks: flips allowed = reference pixels whose float64 normalized value lies within 4 x gap + 1e-6 of the threshold"
    masks = {}
    for word, entry in r32["words"].items():
        for set_name, stage in entry["layer_sets"].items():
            ref64 = r64["words"][word]["layer_sets"][set_name]
            prefix = f"{word}-{set_name}"
            for key in ["word_maps_per_step_layer", "aggregated", "pooled", "normalized_per_step"]:
                save(f"{prefix}-{key}", stage[key], ref64[key])
            save(f"{prefix}-mask_per_step", stage["mask_per_step"])
            tol = 4 * gaps[f"{prefix}-normalized_per_step.npy"] + floor
            for j, th in enumerate(THRESHOLDS):
                near = int((np.abs(ref64["normalized_per_step"] - th) < tol).sum())
                flips = int((stage["mask_per_step"][:, j] != ref64["mask_per_step"][:, j]).sum())
                masks[f"{prefix}@{th}"] = {"token_indices": entry["token_indices"], "near_threshold_pixels_all_steps": near, "f32_vs_f64_flips": flips, "pixels_on_last_step": int(stage["mask_per_step"][-1, j].sum())}
    manifest = {
        "purpose": "LAVIS AttentionStore + LocalBlend (mask from a prompt word's cross-attention) on the tiny kit UNet; see scripts/reference-attention-mask.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__, "lavis": "salesforce/LAVIS@506965b9c4a18c1e565bd32acaccabe0198433f7"},
        "run": {"source_prompt": r32["source_prompt"], "words": WORDS, "steps": STEPS, "guidance_scale": 1.0, "scheduler": "DDIM (SD-1.5 config: scaled_linear 0.00085..0.012, steps_offset 1, clip_sample false, set_alpha_to_one false)", "initial_latents": "parity/inputs/initial_latents.npy", "image_size": list(IMAGE_SIZE), "latent_size": list(r32["step_latents"].shape[2:]), "thresholds": THRESHOLDS, "max_pool": "3x3 stride 1 pad 1 (k=1)", "resize": "nearest to the latent size", "layer_sets": LAYER_SETS},
        "tolerance_rule": rule,
        "gaps_f32_vs_f64": gaps,
        "masks": masks,
        "files": files,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(masks, indent=1))
    print(json.dumps(gaps, indent=1))


if __name__ == "__main__":
    main()

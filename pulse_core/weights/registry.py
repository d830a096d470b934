"""The backbones PULSE can search, with their Hub sources, licenses and search defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import SearchConfig

__all__ = ["Backbone", "BACKBONES", "DEFAULT_BACKBONE", "backbone_for_architecture", "get_backbone"]


@dataclass(frozen=True)
class Backbone:
    """A pretrained generator family and where its weights come from."""

    name: str  # registry key, e.g. "stylegan2-ffhq"
    title: str  # human-readable name for the UI and the model card
    architecture: str  # "stylegan" (v1, as PULSE used it) or "stylegan2" (config-f)
    repo_id: str | None  # default Hub repo; None when the user must give a source
    filename: str | None  # file inside repo_id
    upstream_format: str  # format of the default file (see pulse_core.weights.formats)
    license: str  # SPDX-like id used in Hub metadata
    license_name: str  # the license's full name
    authors: str  # who trained the generator
    year: int  # year of the generator's release
    paper: str  # the generator's paper
    training_data: str  # what it was trained on
    resolution: int  # output side in pixels of the real checkpoint
    search_defaults: SearchConfig = field(default_factory=SearchConfig)  # recommended settings
    notes: str = ""  # anything a user must know before relying on it


BACKBONES: dict[str, Backbone] = {
    "stylegan2-ffhq": Backbone(
        name="stylegan2-ffhq",
        title="StyleGAN2 config-f, FFHQ 1024x1024",
        architecture="stylegan2",
        repo_id="akhaliq/jojogan-stylegan2-ffhq-config-f",
        filename="stylegan2-ffhq-config-f.pt",
        upstream_format="rosinality",
        license="other",
        license_name="NVIDIA Source Code License-NC (non-commercial)",
        authors="Karras et al., NVIDIA",
        year=2020,
        paper="Analyzing and Improving the Image Quality of StyleGAN (CVPR 2020)",
        training_data="FFHQ (Flickr-Faces-HQ), 70,000 aligned faces from Flickr at 1024x1024",
        resolution=1024,
        search_defaults=SearchConfig(),
        notes="Not the paper's generator: PULSE was published with StyleGAN (v1).",
    ),
    "stylegan-ffhq": Backbone(
        name="stylegan-ffhq",
        title="StyleGAN (v1), FFHQ 1024x1024 - the paper's generator",
        architecture="stylegan",
        repo_id=None,
        filename=None,
        upstream_format="pulse",
        license="cc-by-nc-4.0",
        license_name="Creative Commons Attribution-NonCommercial 4.0",
        authors="Karras et al., NVIDIA",
        year=2018,
        paper="A Style-Based Generator Architecture for Generative Adversarial Networks (CVPR 2019)",
        training_data="FFHQ (Flickr-Faces-HQ), 70,000 aligned faces from Flickr at 1024x1024",
        resolution=1024,
        search_defaults=SearchConfig(),
        notes="No public Hub default: pass a local path or Hub repo with PULSE's synthesis.pt and mapping.pt, "
        "lernapparat's karras2019stylegan-ffhq-1024x1024.for_g_all.pt, or a converted folder.",
    ),
}

DEFAULT_BACKBONE = "stylegan2-ffhq"


def get_backbone(name: str | None) -> Backbone:
    """The registry entry ``name`` (None = the default); ``KeyError`` lists the known names."""
    key = DEFAULT_BACKBONE if name is None else name
    try:
        return BACKBONES[key]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}") from None


def backbone_for_architecture(architecture: str) -> Backbone:
    """The registry entry of an architecture ("stylegan" or "stylegan2"), for weights that name none."""
    for backbone in BACKBONES.values():
        if backbone.architecture == architecture:
            return backbone
    raise KeyError(f"no backbone of architecture {architecture!r}")

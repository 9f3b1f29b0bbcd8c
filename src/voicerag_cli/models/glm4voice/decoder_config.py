"""Hyper-parameters of the GLM-4-Voice speech decoder, read from the `config.yaml` it ships.

That file is a HyperPyYAML recipe (`!new:module.Class` tags that instantiate classes when
loaded by its own tooling). It is read here as plain data only: every tag is ignored, `!ref
<name>` is resolved to the top-level value, and nothing is imported or executed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicerag_cli.errors import ModelError

WHAT = "GLM-4-Voice speech decoder"


@dataclass(frozen=True)
class FlowConfig:
    vocab_size: int = 16384
    input_size: int = 512  # token embedding width
    output_size: int = 80  # mel bins
    spk_embed_dim: int = 192
    input_frame_rate: float = 12.5  # speech tokens per second
    encoder_size: int = 512
    encoder_heads: int = 8
    encoder_ffn: int = 2048
    encoder_layers: int = 6
    encoder_block: int = 10  # block-causal attention span, in tokens
    regulator_convs: int = 4
    estimator_channels: tuple[int, ...] = (256, 256)
    estimator_head_dim: int = 64
    estimator_heads: int = 8
    estimator_blocks: int = 4  # transformer blocks per U-Net stage
    estimator_mid: int = 12
    cfg_rate: float = 0.7
    timesteps: int = 10
    sample_rate: int = 22050
    hop: int = 256  # mel frame = 256 samples at 22.05 kHz

    def frames(self, tokens: int) -> int:
        """Mel frames for `tokens` speech tokens, truncated as upstream (int(n / 12.5 * 22050 / 256))."""
        return int(tokens / self.input_frame_rate * self.sample_rate / self.hop)


@dataclass(frozen=True)
class HiftConfig:
    in_channels: int = 80
    base_channels: int = 512
    nb_harmonics: int = 8
    sample_rate: int = 22050
    nsf_alpha: float = 0.1
    nsf_sigma: float = 0.003
    nsf_voiced_threshold: float = 10.0
    upsample_rates: tuple[int, ...] = (8, 8)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16)
    n_fft: int = 16
    hop_len: int = 4
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    source_resblock_kernel_sizes: tuple[int, ...] = (7, 11)
    source_resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5))
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99
    f0_cond_channels: int = 512

    @property
    def samples_per_frame(self) -> int:
        scale = self.hop_len
        for rate in self.upsample_rates:
            scale *= rate
        return scale


@dataclass(frozen=True)
class DecoderConfig:
    flow: FlowConfig = field(default_factory=FlowConfig)
    hift: HiftConfig = field(default_factory=HiftConfig)


def _tolerant_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        value = loader.construct_scalar(node)
        return {"__ref__": value} if suffix == "ref" else value

    Loader.add_multi_constructor("!", untagged)
    return Loader


def _resolve(value: Any, top: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ref__"}:
            return top.get(str(value["__ref__"]).strip("<> "))
        return {k: _resolve(v, top) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, top) for v in value]
    return value


def _number(value: Any) -> Any:
    """HyperPyYAML writes 1e-06 style floats that YAML 1.1 reads as strings."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_decoder_config(text: str, source: str) -> DecoderConfig:
    try:
        import yaml
    except ImportError as exc:
        raise ModelError(f"{WHAT}: reading config.yaml needs PyYAML: pip install 'voicerag[glm4voice]'") from exc

    try:
        raw = yaml.load(text, Loader=_tolerant_loader())  # a SafeLoader subclass: builds plain data only
    except yaml.YAMLError as exc:
        raise ModelError(f"{WHAT}: cannot parse {source}: {exc}") from exc
    if not isinstance(raw, dict) or "flow" not in raw or "hift" not in raw:
        raise ModelError(f"{WHAT}: {source} has no flow/hift sections")
    top = _resolve(raw, raw)
    try:
        flow, hift = top["flow"], top["hift"]
        encoder, estimator = flow["encoder"], flow["decoder"]["estimator"]
        cfm = flow["decoder"]["cfm_params"]
        cfm = cfm.get("content", cfm)
        flow_config = FlowConfig(
            vocab_size=int(flow["vocab_size"]),
            input_size=int(flow["input_size"]),
            output_size=int(flow["output_size"]),
            spk_embed_dim=int(flow["spk_embed_dim"]),
            input_frame_rate=float(flow["input_frame_rate"]),
            encoder_size=int(encoder["output_size"]),
            encoder_heads=int(encoder["attention_heads"]),
            encoder_ffn=int(encoder["linear_units"]),
            encoder_layers=int(encoder["num_blocks"]),
            encoder_block=int(encoder.get("block_size", 25)),
            regulator_convs=len(flow["length_regulator"]["sampling_ratios"]),
            estimator_channels=tuple(int(c) for c in estimator["channels"]),
            estimator_head_dim=int(estimator["attention_head_dim"]),
            estimator_heads=int(estimator["num_heads"]),
            estimator_blocks=int(estimator["n_blocks"]),
            estimator_mid=int(estimator["num_mid_blocks"]),
            cfg_rate=float(_number(cfm["inference_cfg_rate"])),
            sample_rate=int(top.get("sample_rate", 22050)),
        )
        f0 = hift["f0_predictor"]
        hift_config = HiftConfig(
            in_channels=int(hift["in_channels"]),
            base_channels=int(hift["base_channels"]),
            nb_harmonics=int(hift["nb_harmonics"]),
            sample_rate=int(hift["sampling_rate"]),
            nsf_alpha=float(_number(hift["nsf_alpha"])),
            nsf_sigma=float(_number(hift["nsf_sigma"])),
            nsf_voiced_threshold=float(_number(hift["nsf_voiced_threshold"])),
            upsample_rates=tuple(int(r) for r in hift["upsample_rates"]),
            upsample_kernel_sizes=tuple(int(k) for k in hift["upsample_kernel_sizes"]),
            n_fft=int(hift["istft_params"]["n_fft"]),
            hop_len=int(hift["istft_params"]["hop_len"]),
            resblock_kernel_sizes=tuple(int(k) for k in hift["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(tuple(int(d) for d in ds) for ds in hift["resblock_dilation_sizes"]),
            source_resblock_kernel_sizes=tuple(int(k) for k in hift["source_resblock_kernel_sizes"]),
            source_resblock_dilation_sizes=tuple(
                tuple(int(d) for d in ds) for ds in hift["source_resblock_dilation_sizes"]
            ),
            lrelu_slope=float(_number(hift["lrelu_slope"])),
            audio_limit=float(_number(hift["audio_limit"])),
            f0_cond_channels=int(f0["cond_channels"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{WHAT}: {source} lacks or mistypes a decoder setting ({exc})") from exc
    return DecoderConfig(flow_config, hift_config)


def read_decoder_config(path: Path) -> DecoderConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{WHAT}: cannot read {path}: {exc}") from exc
    return parse_decoder_config(text, str(path))

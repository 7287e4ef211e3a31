"""Every hyperparameter of the agent and of a run, in one documented dataclass.

Defaults are the official code's (`configs.yaml` at danijar/dreamerv3 HEAD, see
../shared/docs/dreamerv3-spec.md); the model fields default to the size200m preset,
as the official `defaults` block does. Build a config with `make_config`, which
applies a size preset and then any overrides, and refuses unknown keys.
"""
import dataclasses
import difflib
from dataclasses import dataclass, field

import yaml

# Model-size presets (spec 2.6): D = 8d, Hd = d, C = c = d/16.
SIZES = {
    "1m": dict(deter=512, hidden=64, classes=4, depth=4, units=64),
    "12m": dict(deter=2048, hidden=256, classes=16, depth=16, units=256),
    "25m": dict(deter=3072, hidden=384, classes=24, depth=24, units=384),
    "50m": dict(deter=4096, hidden=512, classes=32, depth=32, units=512),
    "100m": dict(deter=6144, hidden=768, classes=48, depth=48, units=768),
    "200m": dict(deter=8192, hidden=1024, classes=64, depth=64, units=1024),
    "400m": dict(deter=12288, hidden=1536, classes=96, depth=96, units=1536),
}


@dataclass
class Config:
    # --- Run (what to train on and for how long) ---
    # The training CLI fills suite, task, steps, repeat, envs, train_ratio and size from the suite's row in
    # envs/registry.py; the defaults here serve direct use (tests, benchmarks) only.
    suite: str = "gym"  # benchmark suite, see envs.SUITES
    task: str = "CartPole-v1"  # task within the suite
    seed: int = 0  # seeds torch, numpy and the environments
    steps: int = 10_000  # agent-step budget (policy steps summed over envs, no action repeat)
    repeat: int = 1  # action repeat: env steps (frames) per agent step; logged step = agent steps x repeat
    envs: int = 1  # environments stepped together with one batched policy call
    parallel_envs: bool = False  # step environments in worker processes
    env_args: dict = field(default_factory=dict)  # adapter arguments over the suite's official ones,
    #   e.g. {length: 400} for short test episodes; empty = the official settings (not the repeat: set `repeat`)
    train_ratio: float = 32.0  # replayed training steps per agent step (spec 5.4)
    train_fill: int = 1024  # replay items needed before the first update (= batch_size * batch_length)
    replay_size: int = 5_000_000  # replay capacity in steps; oldest dropped first
    replay_chunksize: int = 1024  # steps per replay chunk file on disk
    replay_online: bool = True  # train on every fresh 65-step window once, shortly after collection
    log_every: float = 120.0  # seconds between metric writes
    save_every: float = 900.0  # seconds between checkpoints
    resume_stateful_env: bool = False  # resume even a suite whose env keeps state a checkpoint cannot hold
    #   (bsuite): agent, replay and counters continue, the env starts afresh, so its own accounting (bsuite's
    #   episode count, total_regret) restarts. For learning curves (benchmarks/parity.py), not bsuite scores
    device: str = "auto"  # "auto" = cuda if available else cpu
    precision: str = "auto"  # "auto" = bfloat16 autocast on cuda and on CPUs where a quick matmul
    #   check finds bf16 faster, else float32; or "float32"/"bfloat16"
    compile: str = "auto"  # "steps": torch.compile the per-step pieces (RSSM core, heads, policy MLP),
    #   ~30 s; "update": the whole loss and the acting step, minutes of tracing, CUDA graphs on cuda;
    #   "auto": "update" where the compile is repaid (agent.hardware.resolve_compile), else "off"
    threads: int = 0  # torch CPU threads; 0 = torch's default (one per core). 1 is faster for small
    #   models on cores shared with other jobs
    trackers: tuple = ("tensorboard",)  # where log lines are copied besides the jsonl files (training/
    #   trackers.py): "tensorboard" (event files in the run folder), "wandb" (offline), "mlflow" (SQLite
    #   store in the run folder, or MLFLOW_TRACKING_URI); the last two need their package. () = none
    image_every: float = 1800.0  # seconds between episodes whose frames TensorBoard shows (image suites,
    #   env 0): the first episode, then the first to start once this much time has passed; 0 = none

    # --- Model size (spec 2.6; set by `size`, each still overridable) ---
    size: str = "200m"  # preset name: one of SIZES
    deter: int = 8192  # D: deterministic GRU state
    hidden: int = 1024  # Hd: RSSM hidden width
    stoch: int = 32  # S: categorical latents
    classes: int = 64  # C: classes per latent
    blocks: int = 8  # g: block-GRU groups
    depth: int = 64  # c: CNN base width (stages 2c, 3c, 4c, 4c)
    units: int = 1024  # d: MLP width of encoder, decoder and heads

    # --- Fixed architecture (spec 1-2) ---
    cnn_mults: tuple = (2, 3, 4, 4)  # CNN stage widths in units of depth
    kernel: int = 5  # conv kernel size
    enc_layers: int = 3  # vector encoder MLP layers
    dec_layers: int = 3  # vector decoder MLP layers
    img_layers: int = 2  # prior MLP layers
    obs_layers: int = 1  # posterior MLP layers
    dyn_layers: int = 1  # block-GRU hidden layers
    rew_layers: int = 1
    con_layers: int = 1
    pol_layers: int = 3
    val_layers: int = 3
    bins: int = 255  # two-hot bins for reward and critic
    twohot_mean: str = "mirrored"  # order of the two-hot mean: "mirrored" subtracts mirrored
    #   probabilities first (exact); "official" multiplies by the raw bins first, as the official
    #   code does, with ~0.1 of float32 rounding noise per prediction (issue: paired runs)
    unimix: float = 0.01  # uniform mix into the latent categoricals
    actor_unimix: bool = True  # 1% unimix on the discrete actor. The 2024 code that produced the
    #   published scores applies it (spec 2.5); HEAD configures but does not apply it (spec 8.2).
    min_std: float = 0.1  # continuous policy std bounds
    max_std: float = 1.0

    # --- Losses (spec 3) ---
    batch_size: int = 16
    batch_length: int = 64  # training steps per sequence; one more context step is sampled
    replay_context: int = 1
    imag_length: int = 15  # H
    horizon: int = 333  # continue target (1 - 1/horizon) for live steps
    free_nats: float = 1.0
    return_lambda: float = 0.95  # lambda of the imagined returns
    repval_lambda: float = 0.95  # lambda of the replay value loss returns
    actor_entropy: float = 3e-4
    slow_reg: float = 1.0  # critic regulariser towards the slow critic's mean
    slow_rate: float = 0.02  # slow critic EMA rate, every update
    retnorm_low: float = 5.0  # return normaliser percentiles
    retnorm_high: float = 95.0
    retnorm_rate: float = 0.01
    retnorm_limit: float = 1.0
    loss_scales: dict = field(
        default_factory=lambda: dict(
            rec=1.0, rew=1.0, con=1.0, dyn=1.0, rep=0.1, policy=1.0, value=1.0, repval=0.3
        )
    )

    # --- Optimizer (spec 4): AGC -> LaProp -> warm-up ---
    lr: float = 4e-5
    warmup: int = 1000  # updates of linear warm-up; the first update has lr 0
    agc: float = 0.3
    agc_pmin: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-20

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(Config)}
COMPILE_MODES = ("auto", "off", "steps", "update")
PRECISIONS = ("auto", "float32", "bfloat16")
TWOHOT_MEANS = ("mirrored", "official")  # orders of the two-hot mean (agent/distributions.py)


def parse_value(key: str, text: str):
    """Turn a command-line string into the type of config field `key` (e.g. "1e6" for an int)."""
    check_keys([key])
    current = getattr(Config(), key)
    if isinstance(current, str):
        return text
    value = yaml.safe_load(text)
    if isinstance(value, str) and isinstance(current, (int, float)) and not isinstance(current, bool):
        try:
            value = float(value)  # YAML reads "1e6" as a string
        except ValueError:
            pass
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, int):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
        value = int(value) if ok else value
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(current, tuple):
        ok = isinstance(value, list)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, type(current))
    if not ok:
        raise ValueError(f"config key {key!r} needs a {type(current).__name__}, got {text!r}")
    return value


def check_keys(keys):
    for key in keys:
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown config key {key!r}.{hint} Valid keys: {', '.join(FIELDS)}")


def parse_overrides(items: list[str]) -> dict:
    """`key=value` strings (--set, the workflow's train.overrides) as typed config values."""
    values = {}
    for item in items:
        key, equals, text = str(item).partition("=")
        if not equals:
            raise ValueError(f"--set needs key=value, got {item!r}")
        values[key.strip()] = parse_value(key.strip(), text.strip())
    return values


def make_config(size: str | None = None, **overrides) -> Config:
    """Defaults, then the size preset, then the overrides (each key checked)."""
    check_keys(overrides)
    size = size or overrides.get("size") or Config.size
    if size.startswith("size"):
        size = size[len("size"):]
    if size not in SIZES:
        raise ValueError(f"unknown size preset {size!r}; valid presets: {', '.join(SIZES)}")
    values = dict(SIZES[size], size=size)
    values.update({k: v for k, v in overrides.items() if k != "size"})
    if "loss_scales" in overrides:
        scales = Config().loss_scales
        unknown = set(overrides["loss_scales"]) - set(scales)
        if unknown:
            raise KeyError(f"unknown loss scale(s) {sorted(unknown)}; valid: {sorted(scales)}")
        values["loss_scales"] = {**scales, **overrides["loss_scales"]}
    config = Config(**values)
    validate(config)
    return config


def validate(config: Config):
    """The one check of config values beyond their types; raises ValueError saying what to use instead.
    (Whether the machine offers the device is checked where the device is resolved: agent/hardware.py.)"""
    if config.compile not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {config.compile!r}")
    if config.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}")
    if not config.train_ratio > 0 or config.train_ratio == float("inf"):
        raise ValueError(f"train_ratio must be a number above 0 (replayed steps per agent step), "
                         f"got {config.train_ratio}")
    for key in ("envs", "steps", "repeat", "batch_size", "batch_length"):
        if getattr(config, key) < 1:
            raise ValueError(f"{key} must be at least 1, got {getattr(config, key)}")
    if "repeat" in config.env_args:
        raise ValueError("set the action repeat with `--set repeat=N`, not inside env_args: the logged step "
                         "counts it")
    if config.replay_context != 1:
        raise ValueError(f"replay_context must be 1 (one stored latent starts each sequence, spec 5.3), "
                         f"got {config.replay_context}")
    if config.twohot_mean not in TWOHOT_MEANS:
        raise ValueError(f"twohot_mean must be one of {', '.join(TWOHOT_MEANS)}, got {config.twohot_mean!r}")
    if not config.image_every >= 0:
        raise ValueError(f"image_every must be 0 (no episode frames in TensorBoard) or more seconds, "
                         f"got {config.image_every}")
    if config.bins % 2 != 1:
        raise ValueError(f"bins must be odd (the two-hot bins are symmetric around an exact 0), got {config.bins}")

"""What a mutant is: the areas, the paths, the `Mutant` record and the transformers files the mutants edit. The
mutants themselves are in `catalog` and the `catalog_*` modules beside it (one per subject)."""

from dataclasses import dataclass
from typing import Optional

from packaging.specifiers import SpecifierSet
from packaging.version import Version

AREAS = {
    "encoder": "embeddings, attention and its masks, activations, residuals, pooler",
    "tying": "MLM decoder tied to the word embeddings, output bias",
    "head": "task heads: logits and their own loss wiring",
    "loss": "loss rules: causal shift, regression, multi-label, problem type, num_items_in_batch",
    "schedule": "learning-rate schedules",
    "adamw": "transformers.AdamW (exists up to 4.49)",
    "decay": "the Trainer's weight-decay parameter grouping",
    "masking": "DataCollatorForLanguageModeling",
    "tokenizer": "BertTokenizer: lower-casing, special tokens (the checkpoint's slow tokenizer)",
    "train": "train mode: dropout's sites, rates and scaling",
    "decoding": "cross-attention (encoder states and mask) and incremental decoding with the KV cache",
    "surface": "relative positions, any mask, attention probabilities, hidden states, inputs_embeds, head_mask, untied",
    "backward": "the backward pass only: detached branches, the [PAD] row's gradient, the tied decoder's gradient",
}

# The path of a mutant: which kind of check is expected to kill it, and the target its checks run on (dtype,
# attention). The area says where the bug sits in transformers; the path says which part of the suite must see it.
PATHS = {
    "eager-float64": "reference comparisons of the model on random weights (float64, eager attention)",
    "sdpa": "reference comparisons through the sdpa attention branch (float64, sdpa attention)",
    "float32": "reference comparisons in float32 at its own tolerance (float32, eager attention)",
    "error": "refusals: bad input or parameters both sides must refuse",
    "metamorphic": "relations between runs of the implementation alone (padding, batching, determinism)",
    "checkpoint": "the real all-MiniLM-L6-v2 checkpoint: its weights and its tokenizer",
    "subject": "schedules, AdamW, weight-decay grouping and the MLM collator against their reference",
    "reduced": "reference comparisons in bfloat16, float16 and under autocast, at their own tolerance (eager attention)",
}
PATH_TARGETS = {"sdpa": ("float64", "sdpa"), "float32": ("float32", "eager"),  # (dtype, attention); else float64 eager
                "reduced": ("bfloat16,float16,autocast_bfloat16", "eager")}
AREA_PATHS = {"encoder": "eager-float64", "tying": "eager-float64", "head": "eager-float64", "loss": "eager-float64",
              "schedule": "subject", "adamw": "subject", "decay": "subject", "masking": "subject",
              "tokenizer": "checkpoint", "decoding": "eager-float64", "backward": "eager-float64",
              "train": "eager-float64", "surface": "eager-float64"}  # a mutant's path unless it names its own


@dataclass(frozen=True)
class Mutant:
    """One seeded bug: replace `old` (exactly one occurrence) by `new` in `file` (relative to the transformers
    package). `checks` is the pytest -k expression selecting the checks expected to kill it; `versions` the releases
    whose source has `old` (a packaging SpecifierSet); `equivalent`, when set, argues that no input can tell the
    mutant from the original; `path` (one of PATHS; by default its area's, AREA_PATHS) decides the dtype and
    attention the checks run with (`dtype`, `attn`)."""

    id: str
    area: str
    bug: str
    file: str
    old: str
    new: str
    checks: str
    versions: str = ">=5.0"
    equivalent: Optional[str] = None
    path: Optional[str] = None

    def __post_init__(self):
        if self.path is None:
            object.__setattr__(self, "path", AREA_PATHS[self.area])

    @property
    def dtype(self) -> str:
        return PATH_TARGETS.get(self.path, ("float64", "eager"))[0]

    @property
    def attn(self) -> str:
        return PATH_TARGETS.get(self.path, ("float64", "eager"))[1]

    def applies_to(self, version) -> bool:
        return SpecifierSet(self.versions).contains(Version(str(version)), prereleases=True)


# The files the mutants edit, relative to the transformers package.
MODELING_BERT = "models/bert/modeling_bert.py"
OPTIMIZATION = "optimization.py"
TRAINER = "trainer.py"
DATA_COLLATOR = "data/data_collator.py"
LOSS_UTILS = "loss/loss_utils.py"
MASKING_UTILS = "masking_utils.py"
ACTIVATIONS = "activations.py"
MODELING_UTILS = "modeling_utils.py"
SDPA_ATTENTION = "integrations/sdpa_attention.py"
TOKENIZATION_BERT = "models/bert/tokenization_bert.py"  # the pure-Python tokenizer before 5.0
TOKENIZATION_BERT_LEGACY = "models/bert/tokenization_bert_legacy.py"  # the pure-Python tokenizer from 5.0

# Version ranges were checked against the sources of the releases tox.ini runs (4.4.2 4.6 4.17 4.27 4.36 4.41
# 4.47.1 4.49 4.50 4.54 5.0 5.4 5.19 5.24): `old` occurs exactly once in every sampled release the range contains
# (`python -m conformance.mutants --check-sources FOLDER` prints the matrix). A bound between two sampled releases
# is the sampled one; `apply` fails loudly if a release inside the range lacks `old`. A range also ends where BERT stops
# running the edited code: masking_utils.py exists from 4.54 but BERT builds its masks there only from 5.0, and
# integrations/sdpa_attention.py serves BERT only from 5.0 (BertSdpaSelfAttention before). Where the source differs
# across releases a mutant has one entry per range (`adamw.l2_not_decoupled` and `...@4.4`).

"""The allowed values of every choice-valued config key, defined once (validate.py checks them; the code
that branches on them imports them from here). Standard library only: data/, models/ and the cosmos-rl
entry import it."""

# train_eval: fine-tune, then evaluate the checkpoint it picked, each a run of its own (stages/train_eval.py).
STAGES = ("prepare", "sft", "caption", "judge", "evaluate", "report", "compare", "rig_change", "train_eval")
BACKENDS = ("deepspeed", "cosmos_rl")
FAMILIES = ("qwen2_5_vl", "qwen3_vl")
VIDEO_BACKENDS = ("decord", "pyav")
DATASET_KINDS = ("caption", "blend", "mcq", "lingoqa", "qa", "driving", "physical_ai_av")
BLEND_SOURCE_KINDS = ("caption", "mcq", "lingoqa", "qa")  # dataset.blend[i].kind: conversations of any kind
DRIVING_KINDS = ("driving", "physical_ai_av")  # trajectory clips, not conversations
# lingoqa: the benchmark's Lingo-Judge classifier; lingoqa_llm: an LLM-judge substitute (a different metric).
METRICS = ("llm_judge", "local", "bleu", "mcq", "lingoqa", "lingoqa_llm", "trajectory")
# Scored from a trajectory task's predictions (stage=evaluate with task.kind=trajectory), not from captions.
TRAJECTORY_METRICS = ("trajectory",)
# Metrics scored from the caption JSON against its reference, key by key (they need the caption rubric's keys).
CAPTION_METRICS = ("llm_judge", "local", "bleu")
BLEU_SCALES = ("0-100", "0-1")  # eval.bleu_scale
LR_SCHEDULES = ("cosine", "linear", "constant")
TASK_KINDS = ("caption", "trajectory")  # task.kind
TRAJECTORY_STAGES = ("stage1", "stage2", "cotrain")  # task.trajectory.stage
LOGGERS = ("console", "wandb", "tensorboard")
COSMOS_RL_LOGGERS = ("console", "wandb")  # what cosmos-rl 0.4.7 logs to
DIST_BACKENDS = ("auto", "nccl", "gloo")
ENGINES = ("transformers", "vllm")
PYDANTIC_MODES = ("auto", "always", "never")  # backend.pydantic_check
OVERLONG_POLICIES = ("refuse", "skip")  # backend.overlong
# The training runs of stage=rig_change in the order they run, each a rig_change.<name> node and a run directory
# <study>/runs/<name>/ (config/study.py, cosmos_exp/study/rig_change.py).
RIG_CHANGE_PHASES = ("a_stage1", "a_stage2", "b_expert", "b_stage1", "b_stage2", "mix_stage1", "mix_stage2")
DIRECTIONS = ("minimize", "maximize")  # sweep.objective.direction
EVAL_LOSS = "eval_loss"  # sweep.objective.metric: a training run's held-out loss (every other one is an eval metric)
PICKS = ("final", "best")  # sweep.pick: the checkpoint stage=train_eval evaluates
TARGET_FORMATS = ("json", "fenced_json")  # dataset.target_format: how a caption answer is written
BLEND_BATCHES = ("mixed", "per_source")  # dataset.blend_batches: what one optimizer step's samples come from
MCQ_OPTION_ORDERS = ("fixed", "shuffled")  # dataset.synthetic.mcq_option_order

# Stages that load the model at model.path, and those that read the dataset.
STAGES_NEEDING_MODEL = ("sft", "caption", "evaluate", "train_eval")
STAGES_NEEDING_DATA = ("sft", "caption", "evaluate", "train_eval")

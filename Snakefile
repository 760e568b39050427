# Adaptive Retention: one command reproduces everything (see README and config/README.md).
#   snakemake --cores all                                  the default CPU run (config/config.yaml)
#   snakemake --configfile config/paper.yaml --profile profiles/slurm   the paper grid on a cluster
from snakemake.utils import min_version, validate

min_version("9.0")


if not config:  # no --configfile given: the default run (a --configfile replaces it, no merging)

    configfile: "config/config.yaml"


CONFIG_SCHEMA = "workflow/schemas/config.schema.yaml"  # every key, type and default (common.smk reads its resource defaults)
validate(config, CONFIG_SCHEMA)


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/benchmark.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/decoding.smk"


rule all:
    input:
        all_targets(),
    default_target: True

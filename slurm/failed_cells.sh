#!/usr/bin/env bash
# The cells of slurm/array.sbatch that are not done in the store, as an sbatch --array= list: failed cells
# (imported with their error) and cells without any result (a task that died before writing its bundle).
#
#   slurm/failed_cells.sh DB [EXPERIMENT]
#   cells=$(slurm/failed_cells.sh results/e2e.db) && sbatch "$cells" slurm/array.sbatch configs/amos.yaml
#
# Uses the array's cell numbering: E2E_FOLDS (default "0 1 2 3 4"), E2E_SPARSITIES (default "0.7 0.8 0.9"),
# and E2E_SEED when set; set them as for the array job. EXPERIMENT defaults to the store's only experiment.
# Prints e.g. --array=1,4 and lists each cell on stderr; exit 1 when every cell is done (prints nothing),
# 2 for an unusable store or an unknown experiment.
set -euo pipefail

DB=${1:?usage: slurm/failed_cells.sh DB [EXPERIMENT]}
EXPERIMENT=${2:-}
read -r -a FOLDS <<<"${E2E_FOLDS:-0 1 2 3 4}"
read -r -a SPARSITIES <<<"${E2E_SPARSITIES:-0.7 0.8 0.9}"

die() {
  echo "failed_cells.sh: $*" >&2
  exit 2
}
query() { sqlite3 -readonly -batch -noheader "$DB" "$1"; }
quoted() { printf "'%s'" "${1//\'/\'\'}"; }

[[ -f $DB ]] || die "$DB: no such store"
query "select 1 from jobs limit 0" >/dev/null 2>&1 || die "$DB: not an e2e store (no jobs table)"
if [[ -z $EXPERIMENT ]]; then
  mapfile -t names < <(query "select name from experiments order by name")
  ((${#names[@]} == 1)) || die "$DB holds ${#names[@]} experiments (${names[*]:-none}): name one"
  EXPERIMENT=${names[0]}
fi
[[ -n $(query "select id from experiments where name = $(quoted "$EXPERIMENT")") ]] ||
  die "$DB: no experiment '$EXPERIMENT'"

number='^[0-9]+([.][0-9]+)?$'
for value in "${FOLDS[@]}" "${SPARSITIES[@]}" ${E2E_SEED:+"$E2E_SEED"}; do
  [[ $value =~ $number ]] || die "E2E_FOLDS/E2E_SPARSITIES/E2E_SEED: expected numbers, got '$value'"
done

cells=()
for ((cell = 0; cell < ${#FOLDS[@]} * ${#SPARSITIES[@]}; cell++)); do
  fold=${FOLDS[cell % ${#FOLDS[@]}]}
  sparsity=${SPARSITIES[cell / ${#FOLDS[@]}]}
  where="e.name = $(quoted "$EXPERIMENT") and j.kind = 'train' and j.fold = $fold
         and abs(j.sparsity - $sparsity) < 1e-9 ${E2E_SEED:+and j.seed = $E2E_SEED}"
  state=$(query "select coalesce(max(j.status = 'done'), -1) from jobs j join experiments e
                 on e.id = j.experiment_id where $where")
  ((state == 1)) && continue
  cells+=("$cell")
  if ((state == -1)); then
    echo "cell $cell (fold $fold, sparsity $sparsity): no result in the store" >&2
  else
    error=$(query "select coalesce(j.error, '') from jobs j join experiments e on e.id = j.experiment_id
                   where $where order by j.id desc limit 1")
    echo "cell $cell (fold $fold, sparsity $sparsity): $(query "select j.status from jobs j join experiments e
          on e.id = j.experiment_id where $where order by j.id desc limit 1")${error:+: $error}" >&2
  fi
done
((${#cells[@]} > 0)) || {
  echo "every cell of '$EXPERIMENT' is done" >&2
  exit 1
}
(IFS=,; echo "--array=${cells[*]}")

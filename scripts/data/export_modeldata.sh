#!/usr/bin/env bash
# Exports tabular data sets of Debian's r-cran-modeldata (R's lazy-load format) to CSV for kiln
# automl's examples and figures:
#   credit_data.csv (4,454 rows; label Status good/bad; numeric and categorical columns, some
#                    missing) and a fixed 80/20 split credit_data_train.csv / credit_data_test.csv;
#   ames.csv        (2,930 houses; regression label Sale_Price) and ames_train.csv / ames_test.csv.
# Missing values are written as empty fields. The split is R's sample() after set.seed(1).
# Needs Rscript (r-base-core) and r-cran-modeldata; install_deps.sh runs it. Idempotent.
#   bash scripts/data/export_modeldata.sh [OUT]      # default OUT: .cache/modeldata
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-.cache/modeldata}"
if [[ -f "$out/ames_test.csv" && -f "$out/credit_data_test.csv" ]]; then exit 0; fi
mkdir -p "$out"
Rscript --vanilla - "$out" <<'R'
out <- commandArgs(trailingOnly = TRUE)[1]
export <- function(name, file) {
  env <- new.env()
  data(list = name, package = "modeldata", envir = env)
  d <- as.data.frame(get(name, envir = env))
  write.csv(d, file.path(out, paste0(file, ".csv")), row.names = FALSE, na = "")
  set.seed(1)
  train <- sort(sample(nrow(d), round(0.8 * nrow(d))))
  write.csv(d[train, ], file.path(out, paste0(file, "_train.csv")), row.names = FALSE, na = "")
  write.csv(d[-train, ], file.path(out, paste0(file, "_test.csv")), row.names = FALSE, na = "")
  cat(sprintf("%s: %d rows, %d columns -> %s/%s.csv (+ _train %d, _test %d)\n", name, nrow(d),
              ncol(d), out, file, length(train), nrow(d) - length(train)))
}
export("credit_data", "credit_data")
export("ames", "ames")
R

#!/usr/bin/env bash
# Recompile production/ with the real upstream compiler (chronon-ai 0.0.115), a dev-time tool only.
# Order matters (see ../README.md): plain GroupBys and staging queries, then joins, then chained GroupBys.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${CHRONON_COMPILER_VENV:-$HOME/.venvs/chronon-compiler}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --no-deps chronon-ai==0.0.115
  "$VENV/bin/pip" install -q 'thrift<0.14' click sqlglot
fi
rm -rf production
for f in \
  group_bys/search/item_clicks.py \
  group_bys/risk/user_txn_stats.py \
  staging_queries/search/click_events_enriched.py \
  joins/search/query_relevance.py \
  joins/search/plain_join.py \
  joins/search/search_clicks.py \
  joins/search/enriched_clicks.py \
  joins/risk/txn_fraud.py \
  group_bys/search/query_embedding_stats.py \
  group_bys/search/user_click_affinity.py \
  group_bys/risk/merchant_fraud_stats.py
do
  "$VENV/bin/python" -m ai.chronon.repo.compile --chronon_root=. --input_path="$f" -y --force-overwrite
done

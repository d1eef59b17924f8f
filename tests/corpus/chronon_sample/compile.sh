#!/usr/bin/env bash
# Recompile production/ with the real upstream compiler (chronon-ai 0.0.115). Dev-time tool only.
#
# Order matters (see README.md): staging queries, then plain GroupBys, then joins, then GroupBys
# chained from joins (JoinSource). With this order each file is last written by the compile of its
# own definition or of the join that embeds it, and running the script again is byte-identical.
#
# compile.py exits 0 even when it refuses to write a conf ("Could not write ..."), so this script
# scans its output and fails on that, on any traceback, and on a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${CHRONON_COMPILER_VENV:-$HOME/.venvs/chronon-compiler}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --no-deps chronon-ai==0.0.115
  "$VENV/bin/pip" install -q 'thrift<0.14' click sqlglot
fi

STAGING_QUERIES=(
  staging_queries/growth/venue_daily.py
  staging_queries/growth/session_rollup_view.py
  staging_queries/ads/click_log.py
)

# GroupBys read by joins and other plain GroupBys. compile.py would skip an offline GroupBy without
# a backfill start date, but --force-overwrite also turns that skip off, so every one is written.
GROUP_BYS=(
  group_bys/growth/session_activity.py
  group_bys/growth/account_state.py
  group_bys/growth/account_state_temporal.py
  group_bys/growth/session_totals_stitched.py
  group_bys/growth/session_retired.py
  group_bys/growth/venue_engagement.py
  group_bys/growth/venue_engagement_renamed.py
  group_bys/growth/venue_engagement_rollup.py
  group_bys/growth/session_probe.py
  group_bys/growth/session_legacy_totals.py
  group_bys/growth/page_view_rollup.py
  group_bys/growth/join_part_echo.py
  group_bys/growth/session_lagged.py
  group_bys/growth/session_signals.py
  group_bys/growth/session_sandbox.py
  group_bys/ads/click_stream.py
  group_bys/ads/ad_ctr.py
  group_bys/starter/purchases.py
  group_bys/starter/refunds.py
  group_bys/starter/log_schema.py
  group_bys/starter/members.py
  group_bys/starter/order_totals.py
  group_bys/qa/session_sum.py
  group_bys/qa/venue_counts.py
  group_bys/qa/user/playback_counts.py
)

JOINS=(
  joins/growth/engagement.py
  joins/growth/session_bootstrap.py
  joins/growth/session_derived.py
  joins/growth/session_key_mapped.py
  joins/growth/venue_external.py
  joins/growth/session_probe_join.py
  joins/growth/echo_of_join_part.py
  joins/growth/account_from_module.py
  joins/growth/account_shorthand.py
  joins/growth/session_external_derived.py
  joins/growth/session_external_only.py
  joins/growth/session_bare.py
  joins/growth/session_labels.py
  joins/growth/session_labels_windowed.py
  joins/growth/session_online.py
  joins/growth/session_chain.py
  joins/growth/retired_sessions.py
  joins/growth/account_temporal_backfill.py
  joins/growth/account_churn_scoring.py
  joins/ads/ctr_training.py
  joins/ads/ad_relevance.py
  joins/starter/training_set.py
  joins/starter/order_risk.py
  joins/qa/session_mix.py
  joins/qa/session_online.py
  joins/qa/parent_feed.py
  joins/qa/user/inline_rollup.py
  joins/qa/user/playback_requests.py
  joins/qa/playback_embedding.py
)

# GroupBys whose source is a JoinSource: after their parent joins.
CHAINED_GROUP_BYS=(
  group_bys/qa/chained_playback.py
  group_bys/qa/playback_embedding_stats.py
)

rm -rf production
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for f in "${STAGING_QUERIES[@]}" "${GROUP_BYS[@]}" "${JOINS[@]}" "${CHAINED_GROUP_BYS[@]}"; do
  if ! PYTHONPATH=. "$VENV/bin/python" -m ai.chronon.repo.compile \
      --chronon_root=. --input_path="$f" -y --force-overwrite >"$log" 2>&1; then
    cat "$log" >&2
    echo "compile.sh: compiling $f failed" >&2
    exit 1
  fi
  if grep -q -e "Could not write" -e "Traceback" "$log"; then
    cat "$log" >&2
    echo "compile.sh: the compiler refused $f" >&2
    exit 1
  fi
  echo "compiled $f"
done
echo "production/: $(find production -type f | wc -l) files"

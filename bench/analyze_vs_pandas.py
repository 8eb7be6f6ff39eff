#!/usr/bin/python3
"""The pandas + scipy side of bench/analyze_vs_pandas.sh: the same aggregation and tests as
`abgate analyze --store ... --metric booked` (first exposure per user decides the arm, users in
two arms excluded, booked = any positive outcome per user, two-proportion z-test and
chi-squared), reading the same SQLite store. Prints the elapsed seconds."""
import sqlite3
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats

path, experiment = sys.argv[1], sys.argv[2]
t0 = time.time()
con = sqlite3.connect(path)
exp = pd.read_sql_query("SELECT ts, unit_id, assigned_arm AS arm FROM exposures WHERE experiment = ? AND in_experiment = 1",
                        con, params=(experiment,))
out = pd.read_sql_query("SELECT unit_id, value FROM outcomes WHERE experiment = ? AND metric = 'booked'", con,
                        params=(experiment,))
arms_per_unit = exp.groupby("unit_id")["arm"].nunique()
single = arms_per_unit[arms_per_unit == 1].index
first = exp.sort_values("ts").drop_duplicates("unit_id")[["unit_id", "arm"]]
first = first[first["unit_id"].isin(single)]
booked = (out.groupby("unit_id")["value"].max() > 0).rename("booked")
units = first.merge(booked, left_on="unit_id", right_index=True, how="left").fillna({"booked": False})
agg = units.groupby("arm")["booked"].agg(["sum", "count"])
c, t = agg.iloc[0], agg.iloc[1]
pooled = (c["sum"] + t["sum"]) / (c["count"] + t["count"])
z = (t["sum"] / t["count"] - c["sum"] / c["count"]) / np.sqrt(pooled * (1 - pooled) * (1 / c["count"] + 1 / t["count"]))
p = 2 * stats.norm.sf(abs(z))
chi2, chi_p, _, _ = stats.chi2_contingency(np.array([agg["sum"], agg["count"] - agg["sum"]]), correction=False)
elapsed = time.time() - t0
print(f"pandas: units {len(units)} z {z:.6f} p {p:.3g} chi2 {chi2:.3f} elapsed {elapsed:.2f}")

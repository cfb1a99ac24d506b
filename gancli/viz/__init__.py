"""Looking inside a run: feature-space maps (`gan viz`), curves and the sample timelapse
(`gan plot`), a self-contained HTML report (`gan report`) and the memorisation check
(`gan nn`). Plots are drawn with matplotlib's Agg backend (no display needed)."""

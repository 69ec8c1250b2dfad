"""Report: the paper's tables beside ours, as Markdown pages with their figures.

- paper.py: the published tables (rows, columns, units, notes), typed in once;
- tables.py: the registry TABLES (page name -> builder) and build_reports, which loops over it;
- table1.py ... table5.py, table_unet.py: one builder per page, with its notes and figures;
- context.py: what a builder receives (Context, ReportParams: the only params a report reads)
  and the provenance header every page carries;
- render.py: one renderer for every table (published, ours, and the difference outside the smoke
  profile); figures.py: image grids with class legends, large panels with a colour bar, training curves;
- results.py: an evaluation's results as flat scores (metrics/<net>.json) and a record of counts and
  provenance (eval/<net>/record.json), joined back for the tables;
- index.py: reports/README.md, one line per page and figure, read back from the pages;
- claims.py: the papers' qualitative findings checked on this run (claims.md) and over seeds;
- fingerprint.py: what claims-seeds.md was made from (commit, code and params digests), checked by the
  report stage, which marks the page stale in the index and claims.md;
- scores.py: every net's headline scores as one short table for a terminal (stages/scores.py);
- archfig.py: architecture figures (layers, parameters, receptive field, stride) of the nets we build;
- timing.py: forward-pass timing; flops.py: FLOP counts and peak throughput.

It may import segcore.core, config, data, models, eval and train; never segcore.pipeline.
"""

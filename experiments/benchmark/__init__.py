"""``millinet benchmark``: suites (:mod:`.suite`), cells and their folder (:mod:`.cells`),
planning and running (:mod:`.run`), the lower-bound column (:mod:`.bound`), the analysis
(:mod:`.leaderboard`) and its outputs (:mod:`.report`, :mod:`.plot`)."""

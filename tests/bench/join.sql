-- join.sql: a join-heavy pgbench script for tests/bench/run.sh.
-- One account with its branch and the branch's tellers, then an aggregate
-- over a small range of accounts joined to their branch.
\set aid random(1, 100000 * :scale - 100)
SELECT a.aid, a.abalance, b.bbalance, t.tid, t.tbalance
  FROM pgbench_accounts a
  JOIN pgbench_branches b ON b.bid = a.bid
  JOIN pgbench_tellers t ON t.bid = b.bid
 WHERE a.aid = :aid;
SELECT b.bid, count(*), sum(a.abalance), max(b.bbalance)
  FROM pgbench_accounts a
  JOIN pgbench_branches b ON b.bid = a.bid
 WHERE a.aid BETWEEN :aid AND :aid + 99
 GROUP BY b.bid;

\set v random(1, 20)
SELECT y FROM t1 WHERE x = :v;

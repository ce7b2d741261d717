# SPDX-License-Identifier: Apache-2.0
# chart-adb.gp - the chart of the real adb clients' push and pull on this
# machine (bench-adb-local.py --dat): for each client and direction, each
# way's speed as a fraction of adb straight to the test guest (1 = as fast
# as direct; the line at 1 is the goal), relay, socat and (with --base) the
# earlier relay.
#   gnuplot -e "dat='bench-adb-local.dat'; out='bench-adb-local.png'" chart-adb.gp
set terminal pngcairo size 1100,460 font "sans,10"
set output out
set title "real adb push/pull on this machine: speed as a fraction of straight to the guest (median)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set ylabel "direct time / time through the way"
set xtics rotate by -30
set grid ytics
set key top right autotitle columnheader
cols = system("head -1 " . dat . " | wc -w") - 1
plot for [i = 2:cols + 1] dat using i:xtic(1), 1 with lines lc rgb "black" dt 2 notitle

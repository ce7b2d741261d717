# SPDX-License-Identifier: Apache-2.0
# chart.gp - the chart make bench draws: MB/s of adb WRTE streams per
# payload size, direct, through socat and through the relay, one panel per
# direction, from bench_relay --dat.
#   gnuplot -e "dat='bench-relay.dat'; out='bench-relay.png'" chart.gp
set terminal pngcairo size 1100,460 font "sans,10"
set output out
set multiplot layout 1,2 title "adb WRTE streams: direct, socat and adbd-relay (MB/s, median of 3)"
set logscale x 2
set xlabel "payload per frame (KiB)"
set ylabel "MB/s"
set yrange [0:*]
set key top left
set grid ytics
set style data linespoints
do for [d = 0:1] {
	set title (d == 0 ? "PC to guest" : "guest to PC")
	plot dat index d using 1:2 title "direct" lw 2, \
	     "" index d using 1:3 title "socat" lw 2, \
	     "" index d using 1:4 title "adbd-relay" lw 3
}
unset multiplot

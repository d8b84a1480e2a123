//! Picks how many of a team's threads the training steps use, from measured step times.
//!
//! Splitting a short step over two cores pays for every cache line one core writes and the
//! other then reads. On the 2-core build VM that exchange is usually cheap (a round trip
//! between the cores measured at ~60 ns), but for phases of seconds to minutes the host puts
//! the two vCPUs where it costs ~300 ns, and then a batch-32 step split over two threads
//! runs at *half* the speed of one thread (0.76 s per epoch against 0.37 s). Results are
//! bit-identical for any number of threads, so the engine may follow the measured speed
//! freely: [`WidthTuner`] times windows of steps, now and then runs one window at the other
//! width (a probe), and switches when the probe is clearly faster.
//!
//! Probes that lose back off exponentially (at most one probe in 256 windows once the choice
//! is stable; faster when the probe lost by a wide margin, as one thread does at batch 512),
//! and a window that is much slower than the previous one at the same width brings the next
//! probe forward.

/// Steps of a window, at least.
const MIN_STEPS: u32 = 4;
/// Seconds of a window, at least.
const MIN_SECONDS: f64 = 4e-3;
/// Windows before the first probe, and the shortest interval between probes.
const MIN_INTERVAL: u32 = 4;
/// The longest interval between probes, in windows.
const MAX_INTERVAL: u32 = 256;
/// A probe wins when its time per step is below this fraction of the current width's.
const SWITCH: f64 = 0.9;
/// A probe slower than this multiple of the current width backs off four times as far.
const CLEAR_LOSS: f64 = 1.3;
/// Two windows in a row slower than this multiple of the best recent one (same width) suggest
/// the host changed: probe soon. (One slow window is usually a cold cache, e.g. the first
/// steps after another model ran.)
const SLOWDOWN: f64 = 1.25;
/// Windows a probe is compared with (their best), so that one slow window does not make a
/// probe look faster than it is.
const RECENT: usize = 3;

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct WidthTuner {
    full: usize,
    current: usize,
    probing: bool,
    steps: u32,
    seconds: f64,
    /// Windows at `current` until the next probe.
    until_probe: u32,
    interval: u32,
    /// Seconds per step of the last [`RECENT`] windows at `current`, newest first (infinite:
    /// none yet).
    recent: [f64; RECENT],
    /// Consecutive windows much slower than the best recent one.
    slow_windows: u32,
    /// Steps run at each width (index 0: one thread; 1: full width), for diagnostics.
    counts: [u64; 2],
    /// Test hook: switch width after every step.
    alternate: bool,
}

impl WidthTuner {
    /// A tuner for a team of `full` threads; it starts at full width.
    pub fn new(full: usize) -> WidthTuner {
        WidthTuner {
            full: full.max(1),
            current: full.max(1),
            probing: false,
            steps: 0,
            seconds: 0.0,
            until_probe: MIN_INTERVAL,
            interval: MIN_INTERVAL,
            recent: [f64::INFINITY; RECENT],
            slow_windows: 0,
            counts: [0; 2],
            alternate: false,
        }
    }

    /// A tuner that switches between full width and one thread after every step (tests: a
    /// training run must not depend on the widths its steps ran at).
    #[cfg(test)]
    pub(crate) fn alternating(full: usize) -> WidthTuner {
        WidthTuner {
            alternate: true,
            ..WidthTuner::new(full)
        }
    }

    /// The team size this tuner was made for.
    pub fn full(&self) -> usize {
        self.full
    }

    fn other(&self) -> usize {
        if self.current == 1 {
            self.full
        } else {
            1
        }
    }

    /// The width the next step should use.
    pub fn width(&self) -> usize {
        if self.probing {
            self.other()
        } else {
            self.current
        }
    }

    /// Steps run at one thread and at full width so far.
    pub fn counts(&self) -> [u64; 2] {
        self.counts
    }

    /// Records that one step at [`WidthTuner::width`] took `seconds`.
    pub fn record(&mut self, seconds: f64) {
        self.counts[usize::from(self.width() != 1)] += 1;
        if self.full == 1 {
            return;
        }
        if self.alternate {
            self.current = self.other();
            return;
        }
        self.steps += 1;
        self.seconds += seconds;
        if self.steps < MIN_STEPS || self.seconds < MIN_SECONDS {
            return;
        }
        let per_step = self.seconds / f64::from(self.steps);
        self.steps = 0;
        self.seconds = 0.0;
        let best = self.recent.iter().copied().fold(f64::INFINITY, f64::min);
        if self.probing {
            self.probing = false;
            if per_step < SWITCH * best {
                self.current = self.other();
                self.recent = [f64::INFINITY; RECENT];
                self.recent[0] = per_step;
                self.slow_windows = 0;
                self.interval = MIN_INTERVAL;
            } else if per_step > CLEAR_LOSS * best {
                self.interval = (self.interval * 4).min(MAX_INTERVAL);
            } else {
                self.interval = (self.interval * 2).min(MAX_INTERVAL);
            }
            self.until_probe = self.interval;
            return;
        }
        if per_step > SLOWDOWN * best {
            self.slow_windows += 1;
            if self.slow_windows >= 2 {
                self.until_probe = 1;
            }
        } else {
            self.slow_windows = 0;
        }
        self.recent.rotate_right(1);
        self.recent[0] = per_step;
        self.until_probe = self.until_probe.saturating_sub(1);
        if self.until_probe == 0 {
            self.probing = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` steps whose time per step at each width is given by `cost(width)`;
    /// returns the steps run at one thread.
    fn run(t: &mut WidthTuner, steps: usize, mut cost: impl FnMut(usize) -> f64) -> u64 {
        let before = t.counts()[0];
        for _ in 0..steps {
            let w = t.width();
            t.record(cost(w));
        }
        t.counts()[0] - before
    }

    #[test]
    fn stays_wide_when_two_threads_are_faster_and_probes_rarely() {
        let mut t = WidthTuner::new(2);
        // Batch 32 on the quiet host: 150 µs per step on 2 threads, 190 µs on 1.
        let cost = |w: usize| if w == 1 { 190e-6 } else { 150e-6 };
        let solo = run(&mut t, 100_000, cost);
        assert_eq!(t.width(), 2);
        // Probes back off to one window in 256: well under 1 % of steps run solo.
        assert!(solo < 1_000, "{solo} of 100000 steps ran on one thread");
    }

    #[test]
    fn switches_to_one_thread_when_exchanging_data_is_slow_and_back() {
        let mut t = WidthTuner::new(2);
        // The slow host phase: 2 threads take twice as long as one.
        let slow = |w: usize| if w == 1 { 200e-6 } else { 400e-6 };
        run(&mut t, 200, slow);
        assert_eq!(t.width(), 1, "after 200 steps of the slow phase");
        let solo = run(&mut t, 100_000, slow);
        assert!(
            solo > 99_000,
            "only {solo} of 100000 steps ran on one thread"
        );
        // The host turns quiet again: full width returns within one probe interval.
        let fast = |w: usize| if w == 1 { 200e-6 } else { 150e-6 };
        let steps_per_window = (MIN_SECONDS / 150e-6).ceil() as usize + 1;
        run(&mut t, steps_per_window * (MAX_INTERVAL as usize + 2), fast);
        assert_eq!(t.width(), 2);
    }

    #[test]
    fn a_sudden_slowdown_brings_the_next_probe_forward() {
        let mut t = WidthTuner::new(2);
        run(&mut t, 100_000, |w| if w == 1 { 190e-6 } else { 150e-6 });
        assert_eq!(t.interval, MAX_INTERVAL);
        assert_eq!(t.width(), 2);
        // Slow phase: found within a few windows, not after 256.
        let slow = |w: usize| if w == 1 { 200e-6 } else { 400e-6 };
        let window = (MIN_SECONDS / 200e-6).ceil() as usize + 1;
        run(&mut t, 8 * window, slow);
        assert_eq!(t.width(), 1);
    }

    #[test]
    fn a_cold_window_now_and_then_does_not_make_it_switch() {
        let mut t = WidthTuner::new(2);
        // Every 500 steps, ten steps run at half speed (caches cold after another model ran:
        // one slow window); one thread is 1.25x slower than two.
        let mut step = 0u64;
        let mut cost = |w: usize| {
            step += 1;
            let base = if w == 1 { 187e-6 } else { 150e-6 };
            if step % 500 < 10 {
                base * 2.0
            } else {
                base
            }
        };
        let solo = run(&mut t, 100_000, &mut cost);
        assert!(solo < 1_000, "{solo} of 100000 steps ran on one thread");
    }

    #[test]
    fn long_steps_that_split_well_are_rarely_probed() {
        let mut t = WidthTuner::new(2);
        // Batch 512: 2.1 ms per step on 2 threads, 3.4 ms on one (the probe loses clearly).
        let solo = run(&mut t, 20_000, |w| if w == 1 { 3.4e-3 } else { 2.1e-3 });
        assert_eq!(t.width(), 2);
        // Four steps per probe, one probe in 256 windows once stable: under 1 % of steps.
        assert!(solo <= 200, "{solo} of 20000 steps ran on one thread");
        // Batch 128 in the slow host phase: 1 ms per step on 2 threads, 0.8 ms on one.
        let mut t = WidthTuner::new(2);
        run(&mut t, 200, |w| if w == 1 { 0.8e-3 } else { 1.05e-3 });
        assert_eq!(t.width(), 1);
    }

    #[test]
    fn a_team_of_one_is_always_one() {
        let mut t = WidthTuner::new(1);
        run(&mut t, 1000, |_| 1e-4);
        assert_eq!(t.width(), 1);
        assert_eq!(t.counts(), [1000, 0]);
    }
}

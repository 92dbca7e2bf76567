//! One step of a battle (docs/rules.md#unit-behaviour): reinforcements deploy, one pass
//! surveys the field (the grids, where each army stands), every unit acts (keeps or finds its
//! nearest enemy, strikes, steers round walls and friends), damage lands with its morale, the
//! bodies whose wanted velocity changed are touched, rapier steps, and the judge decides.

use super::*;

impl BattleSim {
    /// Runs one step of 1/60 s of battle time; does nothing once the battle has ended.
    pub fn step(&mut self) {
        if self.outcome.is_some() {
            return;
        }
        self.removed.clear();
        self.steered.clear();
        self.deploy_due(false);
        let sides = self.survey();
        self.act(sides);
        let fighting = self.apply_damage();
        // Bodies whose velocity is already about right are left alone: a mutable access makes
        // rapier re-examine the body at the next step, which costs more than this check.
        for (i, state) in self.state.iter().enumerate() {
            if state.on_field() && (self.vel[i] - self.body_vel[i]).length_squared() > CLOSE_ENOUGH
            {
                let velocity = self.vel[i];
                self.physics.bodies[self.body[i]].set_linvel(velocity, velocity != Vector::ZERO);
                self.steered.push(i as u32);
            }
        }
        self.physics.step();
        let hold = self.step + HOLD_STEPS;
        for (i, state) in self.state.iter().enumerate() {
            if !state.on_field() {
                continue;
            }
            let body = &self.physics.bodies[self.body[i]];
            let now = body.translation();
            self.body_vel[i] = body.linvel();
            let wanted = self.vel[i];
            // Blocked: the advance along the wanted direction fell short of BLOCKED of a
            // step's travel (both sides of the comparison multiplied by the speed).
            if *state == UnitState::Fighting
                && wanted != Vector::ZERO
                && (now - self.pos[i]).dot(wanted)
                    < BLOCKED * wanted.length_squared() / STEPS_PER_SECOND
            {
                self.hold_until[i] = hold;
            }
            self.pos[i] = now;
        }
        self.step += 1;
        self.outcome = self.judge(fighting);
    }

    /// One pass over the units on the field: the grids of each side, and where each side
    /// stands (its centre and the box around it).
    fn survey(&mut self) -> [Option<(Vector, Vector, Vector)>; 2] {
        let mut sum = [Vector::ZERO; 2];
        let mut low = [Vector::splat(f32::MAX); 2];
        let mut high = [Vector::splat(f32::MIN); 2];
        let [attackers, defenders] = &mut self.entries;
        attackers.clear();
        defenders.clear();
        for (i, state) in self.state.iter().enumerate() {
            if !state.on_field() {
                continue;
            }
            let s = self.stats[self.group[i] as usize].side.index();
            let p = self.pos[i];
            sum[s] += p;
            low[s] = low[s].min(p);
            high[s] = high[s].max(p);
            let entry = (self.grids[s].cell_of(p), i as u32);
            if s == 0 {
                attackers.push(entry)
            } else {
                defenders.push(entry)
            }
        }
        self.grids[0].fill(&self.entries[0]);
        self.grids[1].fill(&self.entries[1]);
        [0, 1].map(|s| {
            let count = self.entries[s].len();
            (count > 0).then(|| (sum[s] / count as f32, low[s], high[s]))
        })
    }

    /// Every unit on the field picks what to do: target, strike, move or flee.
    fn act(&mut self, sides: [Option<(Vector, Vector, Vector)>; 2]) {
        let mut march = [f32::MAX; 2];
        let mut fastest = 0.1f32;
        for (g, stats) in self.stats.iter().enumerate() {
            if !self.pending.contains(&(g as u16)) {
                let s = stats.side.index();
                march[s] = march[s].min(stats.max_speed);
                fastest = fastest.max(stats.max_speed * FLIGHT_SPEED);
            }
        }
        let params = &self.setup.params;
        let (radius, retarget) = (params.search_radius, params.retarget_steps);
        for i in 0..self.state.len() {
            self.cooldown[i] = self.cooldown[i].saturating_sub(1);
            let stats = self.stats[self.group[i] as usize];
            match self.state[i] {
                UnitState::Fighting => {}
                UnitState::Routed => {
                    let away = if stats.side == Side::Attacker {
                        -1.0
                    } else {
                        1.0
                    };
                    self.vel[i] = Vector::new(away * stats.max_speed * FLIGHT_SPEED, 0.0);
                    continue;
                }
                UnitState::Dead | UnitState::Fled => continue,
            }
            let enemy = stats.side.other().index();
            let me = self.pos[i];
            let in_reach = |sim: &Self, t: u32| {
                let their = &sim.stats[sim.group[t as usize] as usize];
                let reach = stats.range + stats.radius + their.radius;
                (sim.pos[t as usize] - me).length_squared() <= reach * reach
            };
            let mut target = self.target[i];
            let lost = target != NONE && !self.state[target as usize].on_field();
            let mut striking = !lost && target != NONE && in_reach(self, target);
            // A unit looks again when its target falls or flees, and when its search is due
            // unless it is striking; never when no enemy can be within reach.
            if lost || (!striking && self.step >= self.next_search[i]) {
                let reachable = sides[enemy].is_some_and(|(_, low, high)| {
                    let gap = (low - me).max(me - high).max(Vector::ZERO);
                    gap.length_squared() <= radius * radius
                });
                target = if reachable {
                    self.grids[enemy]
                        .nearest(me, radius, &self.pos)
                        .unwrap_or(NONE)
                } else {
                    NONE
                };
                striking = target != NONE && in_reach(self, target);
                // The next search waits `retarget` steps, or longer while the enemy is far:
                // up to half the time the gap takes to close at twice the fastest pace.
                let far = if target == NONE {
                    f32::MAX
                } else {
                    let their = &self.stats[self.group[target as usize] as usize];
                    let gap = (self.pos[target as usize] - me).length()
                        - (stats.range + stats.radius + their.radius);
                    gap / (4.0 * fastest) * STEPS_PER_SECOND
                };
                let wait = (far.max(0.0) as u32).clamp(retarget, SEARCH_WAIT_MAX * retarget);
                self.next_search[i] = self.step + wait;
            }
            let retargeted = target != self.target[i];
            self.target[i] = target;
            let goal = if striking {
                let t = target as usize;
                if self.cooldown[i] == 0 {
                    let their = self.stats[self.group[t] as usize];
                    self.strike(i, t, &stats, &their);
                    self.cooldown[i] = stats.cooldown_steps;
                }
                None
            } else if target != NONE {
                Some(self.pos[target as usize])
            } else {
                // Out of reach of any enemy, a unit keeps its place in the line and advances
                // the way its army faces the other: heading for the enemy's centre instead
                // would funnel the whole army into one crushed crowd.
                match (sides[stats.side.index()], sides[enemy]) {
                    (Some((ours, _, _)), Some((theirs, _, _))) => Some(me + (theirs - ours)),
                    _ => None,
                }
            };
            // Without an enemy in reach, an army advances together at its slowest pace.
            let speed = if target == NONE {
                march[stats.side.index()]
            } else {
                stats.max_speed
            };
            self.vel[i] = match goal {
                Some(goal) if self.step >= self.hold_until[i] => {
                    // A moving unit keeps its heading between its steering slots: its body's
                    // velocity then need not be touched while nothing pushes it.
                    let slot = (self.step as usize + i).is_multiple_of(STEER_EVERY);
                    if slot || retargeted || self.vel[i] == Vector::ZERO {
                        let wanted = self.steer(me, goal, stats.side, speed);
                        match self.blocker(i, wanted, &stats, QUEUE_GAP) {
                            None => wanted,
                            // Blocked by a friend: step round it, away from its side, if
                            // that way is open ground (no friend within a rank's spacing,
                            // so units do not squeeze into the gaps of their own ranks);
                            // otherwise stand for a while.
                            Some(offset) => {
                                let left = Vector::new(-wanted.y, wanted.x);
                                let away = if offset.dot(left) > 0.0 { -1.0 } else { 1.0 };
                                let aside = wanted * SIDESTEP.0 + left * (away * SIDESTEP.1);
                                if self.blocker(i, aside, &stats, self.spacing).is_none() {
                                    aside
                                } else {
                                    self.hold_until[i] = self.step + QUEUE_STEPS;
                                    Vector::ZERO
                                }
                            }
                        }
                    } else {
                        self.vel[i]
                    }
                }
                _ => Vector::ZERO,
            };
        }
    }

    /// The offset of a fighting friend within `gap` ahead of unit `i` (wanting to move at
    /// `wanted`) that is not advancing that way, if there is one. A unit does not push into such a
    /// friend: pushing crowds only crush together and multiply the contacts the physics must
    /// solve.
    fn blocker(&self, i: usize, wanted: Vector, stats: &GroupStats, gap: f32) -> Option<Vector> {
        if wanted == Vector::ZERO {
            return None;
        }
        let me = self.pos[i];
        let speed = wanted.length();
        let dir = wanted / speed;
        // Every friend that can block stands within `reach` in the cone ahead, which lies in
        // the rectangle from `me` `reach` forward and `reach × sin 45°` to either side.
        let reach = stats.radius + (self.spacing - 1.0) / 2.0 + gap;
        let side = Vector::new(-dir.y, dir.x) * (reach * 0.71);
        let ahead = dir * reach;
        let corners = [me + side, me - side, me + ahead + side, me + ahead - side];
        let low = corners
            .iter()
            .fold(Vector::splat(f32::MAX), |a, &c| a.min(c));
        let high = corners
            .iter()
            .fold(Vector::splat(f32::MIN), |a, &c| a.max(c));
        let mut found = None;
        self.grids[stats.side.index()].any_in(low, high, |u| {
            let u = u as usize;
            if u == i || self.state[u] != UnitState::Fighting {
                return false;
            }
            let d = self.pos[u] - me;
            let touch = stats.radius + self.stats[self.group[u] as usize].radius + gap;
            let forward = d.dot(dir);
            let distance_sq = d.length_squared();
            let blocks = distance_sq <= touch * touch
                && forward > 0.0
                && forward * forward >= QUEUE_CONE * QUEUE_CONE * distance_sq
                && self.body_vel[u].dot(dir) < 0.5 * speed;
            if blocks {
                found = Some(d);
            }
            blocks
        });
        found
    }

    /// Velocity from `me` towards `goal`, around walls: defenders hold behind them, attackers
    /// head for the nearest gate before crossing.
    fn steer(&self, me: Vector, goal: Vector, side: Side, speed: f32) -> Vector {
        let mut goal = goal;
        if let Some(walls) = &self.walls {
            let inside = |p: Vector| p.x > walls.x;
            match side {
                Side::Defender if inside(me) && !inside(goal) => return Vector::ZERO,
                Side::Attacker if !inside(me) && inside(goal) => {
                    let gate = walls
                        .gates
                        .iter()
                        .copied()
                        .min_by(|a, b| (a - me.y).abs().total_cmp(&(b - me.y).abs()))
                        .unwrap_or(0.0);
                    if (me.y - gate).abs() > 0.6 * walls.gate_half_width {
                        goal = Vector::new(walls.x - 2.0 * self.spacing, gate);
                    } else {
                        goal = Vector::new(goal.x.max(walls.x + self.spacing), gate);
                    }
                }
                _ => {}
            }
        }
        let d = goal - me;
        let len = d.length();
        if len < 1e-3 {
            Vector::ZERO
        } else {
            d * (speed / len)
        }
    }

    /// Unit `i` strikes unit `t`.
    fn strike(&mut self, i: usize, t: usize, stats: &GroupStats, their: &GroupStats) {
        let mut defense = their.defense;
        if let Some(walls) = &self.walls
            && their.side == Side::Defender
            && self.pos[t].x > walls.x
        {
            defense *= walls.defense_factor;
        }
        let per_soldier = stats.attack * stats.attack / (stats.attack + defense)
            * self.counters[usize::from(stats.type_index)][usize::from(their.type_index)];
        let variation = self.setup.params.damage_variation * (2.0 * self.unit_random() - 1.0);
        self.incoming[t] += self.soldiers[i] as f32 * per_soldier * (1.0 + variation);
    }

    /// Lands the damage of this step, breaks morale, removes the fallen and the fled. Returns
    /// the units still fighting on each side.
    fn apply_damage(&mut self) -> [u32; 2] {
        let params = &self.setup.params;
        let mut fighting = [0u32; 2];
        for i in 0..self.state.len() {
            if !self.state[i].on_field() {
                continue;
            }
            let stats = &self.stats[self.group[i] as usize];
            let incoming = std::mem::take(&mut self.incoming[i]);
            if incoming > 0.0 {
                let total = self.wounds[i] + incoming;
                let lost = ((total / stats.hit_points) as u32).min(self.soldiers[i]);
                self.soldiers[i] -= lost;
                self.wounds[i] = if self.soldiers[i] == 0 {
                    0.0
                } else {
                    total - lost as f32 * stats.hit_points
                };
                self.morale[i] -= lost as f32 * 100.0 / self.deployed_soldiers[i] as f32
                    * params.morale_loss_per_percent;
            }
            let fled = self.state[i] == UnitState::Routed
                && match stats.side {
                    Side::Attacker => self.pos[i].x < self.min.x,
                    Side::Defender => self.pos[i].x > self.max.x,
                };
            if self.soldiers[i] == 0 || fled {
                self.state[i] = if fled {
                    UnitState::Fled
                } else {
                    UnitState::Dead
                };
                self.target[i] = NONE;
                self.physics.remove_body(self.body[i]);
                self.removed.push(i as u32);
                continue;
            }
            if self.state[i] == UnitState::Fighting && self.morale[i] <= params.rout_morale {
                self.state[i] = UnitState::Routed;
                self.target[i] = NONE;
            }
            if self.state[i] == UnitState::Fighting {
                fighting[stats.side.index()] += 1;
            }
        }
        fighting
    }

    fn judge(&self, fighting: [u32; 2]) -> Option<Outcome> {
        let reason_for = |loser: Side| {
            let any_left = self.state.iter().enumerate().any(|(i, s)| {
                self.stats[self.group[i] as usize].side == loser
                    && matches!(s, UnitState::Routed | UnitState::Fled)
            });
            if any_left {
                EndReason::Routed
            } else {
                EndReason::Eliminated
            }
        };
        let steps = self.step;
        match fighting {
            [0, _] => Some(Outcome {
                winner: Side::Defender,
                reason: reason_for(Side::Attacker),
                steps,
            }),
            [_, 0] => Some(Outcome {
                winner: Side::Attacker,
                reason: reason_for(Side::Defender),
                steps,
            }),
            _ if steps >= self.setup.params.time_limit_steps => Some(Outcome {
                winner: Side::Defender,
                reason: EndReason::TimeLimit,
                steps,
            }),
            _ => None,
        }
    }
}

//! Deployment (docs/rules.md#deployment): the field sized to the armies, attackers on one
//! side and defenders on the other in ranks, city walls with their gates across the field,
//! and reinforcements that form up behind their side when their join step comes.

use super::*;

impl BattleSim {
    /// Deploys the groups present at the start. Reinforcements of the setup deploy at their
    /// join steps.
    pub fn new(setup: BattleSetup) -> Result<BattleSim, SetupError> {
        setup.validate()?;
        let stats: Vec<GroupStats> = setup
            .groups
            .iter()
            .map(|g| GroupStats::new(g, &setup.troops, &setup.params))
            .collect::<Result<_, _>>()?;
        let max_radius = setup
            .troops
            .0
            .values()
            .map(|t| t.radius as f32)
            .fold(0.0, f32::max);
        let spacing = 2.0 * max_radius + 1.0;
        let units_of = |side: Side| -> usize {
            setup
                .groups
                .iter()
                .filter(|g| g.side == side && g.join_step == 0)
                .map(|g| unit_sizes(g.soldiers, setup.params.soldiers_per_unit).count())
                .sum()
        };
        let widest = units_of(Side::Attacker)
            .max(units_of(Side::Defender))
            .max(1);
        let rows = ((widest as f32 * 3.0).sqrt().ceil() as usize).max(1);
        let depth = |n: usize| (n.div_ceil(rows).max(1) - 1) as f32 * spacing;
        let half_gap = setup.params.deploy_gap / 2.0;
        let half_height = rows as f32 * spacing / 2.0 + MARGIN;
        let min = Vector::new(
            -half_gap - depth(units_of(Side::Attacker)) - MARGIN,
            -half_height,
        );
        let max = Vector::new(
            half_gap + depth(units_of(Side::Defender)) + MARGIN,
            half_height,
        );

        let mut physics = PhysicsWorld::new();
        physics.gravity = Vector::ZERO;
        physics.integration_parameters.num_solver_iterations =
            setup.params.solver_iterations as usize;
        let walls = (setup.walls > 0)
            .then(|| Self::build_walls(&mut physics, &setup, half_gap, half_height, spacing));
        let grid = || {
            Grid::new(
                min - Vector::splat(MARGIN),
                max + Vector::splat(MARGIN),
                CELL,
            )
        };

        let mut pending: Vec<u16> = (0..setup.groups.len() as u16).collect();
        pending.sort_by_key(|&g| (setup.groups[g as usize].join_step, g));
        let mut sim = BattleSim {
            rng: ChaCha8Rng::seed_from_u64(setup.seed),
            counters: crate::battle::setup::counter_table(&setup.troops),
            setup,
            stats,
            pending,
            physics,
            step: 0,
            outcome: None,
            body: Vec::new(),
            pos: Vec::new(),
            vel: Vec::new(),
            body_vel: Vec::new(),
            group: Vec::new(),
            state: Vec::new(),
            deployed_soldiers: Vec::new(),
            soldiers: Vec::new(),
            wounds: Vec::new(),
            morale: Vec::new(),
            cooldown: Vec::new(),
            target: Vec::new(),
            hold_until: Vec::new(),
            next_search: Vec::new(),
            incoming: Vec::new(),
            grids: [grid(), grid()],
            entries: [Vec::new(), Vec::new()],
            min,
            max,
            rear: [-half_gap, half_gap],
            spacing,
            rows,
            walls,
            removed: Vec::new(),
            steered: Vec::new(),
        };
        sim.deploy_due(true);
        Ok(sim)
    }

    fn build_walls(
        physics: &mut PhysicsWorld,
        setup: &BattleSetup,
        half_gap: f32,
        half_height: f32,
        spacing: f32,
    ) -> Walls {
        let level = setup.walls.min(10) as f32;
        let geometry = &setup.params.walls;
        let half_thickness = (geometry.thickness + geometry.thickness_per_level * level) / 2.0;
        let x = half_gap - half_thickness - 2.0;
        let gate_count = ((2.0 * half_height / geometry.per_gate.max(1.0)).ceil() as usize).max(1);
        let gate_half_width = geometry.gate_width.unwrap_or(3.0 * spacing) / 2.0;
        let gates: Vec<f32> = (0..gate_count)
            .map(|i| -half_height + 2.0 * half_height * (i as f32 + 0.5) / gate_count as f32)
            .collect();
        // Wall segments between the gates, reaching far beyond the field at both ends.
        let far = half_height + 10_000.0;
        let mut edges = vec![-far];
        for gate in &gates {
            edges.push(gate - gate_half_width);
            edges.push(gate + gate_half_width);
        }
        edges.push(far);
        for pair in edges.chunks(2) {
            let (from, to) = (pair[0], pair[1]);
            let body = RigidBodyBuilder::fixed().translation(Vector::new(x, (from + to) / 2.0));
            let collider = ColliderBuilder::cuboid(half_thickness, (to - from) / 2.0).friction(0.0);
            physics.insert(body, collider);
        }
        Walls {
            x,
            half_thickness,
            gates,
            gate_half_width,
            defense_factor: 1.0 + setup.params.wall_defense_bonus * level,
        }
    }

    /// Adds a group during the battle: it deploys at `group.join_step`, or at the next step if
    /// that has passed, and never at step 0, which stands for the armies present at the start
    /// (a replay of the stored setup deploys those with the field): a group that joins before
    /// the first step deploys at step 1, behind the lines. Returns the join step used.
    pub fn add_group(&mut self, mut group: GroupSetup) -> Result<u32, SetupError> {
        if group.soldiers == 0 {
            return Err(SetupError::EmptyGroup(group.id));
        }
        if self.setup.groups.len() >= crate::battle::setup::MAX_GROUPS {
            return Err(SetupError::TooManyGroups);
        }
        group.join_step = group.join_step.max(self.step).max(1);
        let index = self.setup.groups.len() as u16;
        let key = (group.join_step, index);
        self.stats.push(GroupStats::new(
            &group,
            &self.setup.troops,
            &self.setup.params,
        )?);
        self.setup.groups.push(group);
        let at = self
            .pending
            .partition_point(|&g| (self.setup.groups[g as usize].join_step, g) < key);
        self.pending.insert(at, index);
        Ok(key.0)
    }

    /// Deploys the pending groups whose join step has come, in (join step, index) order:
    /// `initial` for the armies present at the start, which form up on the front line.
    pub(super) fn deploy_due(&mut self, initial: bool) {
        let due = self
            .pending
            .partition_point(|&g| self.setup.groups[g as usize].join_step <= self.step);
        if due == 0 {
            return;
        }
        let groups: Vec<u16> = self.pending.drain(..due).collect();
        for side in Side::BOTH {
            // The fastest form up in front, so an advancing army does not run into itself;
            // archers end up behind, in range over their friends.
            let mut members: Vec<u16> = groups
                .iter()
                .copied()
                .filter(|&g| self.stats[g as usize].side == side)
                .collect();
            members.sort_by(|a, b| {
                let speed = |g: &u16| self.stats[*g as usize].max_speed;
                speed(b).total_cmp(&speed(a)).then(a.cmp(b))
            });
            if !members.is_empty() {
                self.deploy_block(side, &members, initial);
            }
        }
    }

    /// Forms `groups` up in a block behind the side's rearmost line (the front line at first).
    fn deploy_block(&mut self, side: Side, groups: &[u16], first: bool) {
        let s = side.index();
        let dir = if side == Side::Attacker { -1.0 } else { 1.0 };
        let front = if first {
            self.rear[s]
        } else {
            self.rear[s] + dir * 2.0 * self.spacing
        };
        let mut slot = 0usize;
        for &g in groups {
            let stats = self.stats[g as usize];
            let soldiers = self.setup.groups[g as usize].soldiers;
            for size in unit_sizes(soldiers, self.setup.params.soldiers_per_unit) {
                let column = slot / self.rows;
                let row = slot % self.rows;
                slot += 1;
                let jitter = Vector::new(self.unit_random() - 0.5, self.unit_random() - 0.5)
                    * (0.1 * self.spacing);
                let p = Vector::new(
                    front + dir * column as f32 * self.spacing,
                    (row as f32 - (self.rows as f32 - 1.0) / 2.0) * self.spacing,
                ) + jitter;
                let body = RigidBodyBuilder::dynamic().translation(p).lock_rotations();
                let collider = ColliderBuilder::ball(stats.radius)
                    .mass(stats.mass)
                    .friction(0.0)
                    .restitution(0.0);
                let (handle, _) = self.physics.insert(body, collider);
                self.body.push(handle);
                self.pos.push(p);
                self.vel.push(Vector::ZERO);
                self.body_vel.push(Vector::ZERO);
                self.group.push(g);
                self.state.push(UnitState::Fighting);
                self.deployed_soldiers.push(size);
                self.soldiers.push(size);
                self.wounds.push(0.0);
                self.morale.push(stats.morale);
                self.cooldown.push(0);
                self.target.push(NONE);
                self.hold_until.push(0);
                let slot = self.next_search.len() as u32 % self.setup.params.retarget_steps;
                self.next_search.push(self.step + slot);
                self.incoming.push(0.0);
            }
        }
        let columns = slot.div_ceil(self.rows).max(1);
        self.rear[s] = front + dir * (columns - 1) as f32 * self.spacing;
        if side == Side::Attacker {
            self.min.x = self.min.x.min(self.rear[s] - MARGIN);
        } else {
            self.max.x = self.max.x.max(self.rear[s] + MARGIN);
        }
    }
}

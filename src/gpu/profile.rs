//! GPU timestamp queries for the per-kernel profile (`metrics::ProfileReport` is what it fills): inside
//! the compute pass when the adapter allows it, else one pass per dispatch; adapters without timestamps
//! are timed by the wall clock (`metrics::Timing`). Tested by tests/cli_gpu.rs.

/// Timestamp queries of one submission: a query set, where to resolve it, and where to read it.
pub struct QueryRing {
    pub set: wgpu::QuerySet,
    pub capacity: u32,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f64,
}

impl QueryRing {
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue, capacity: u32) -> Self {
        let capacity = capacity.clamp(2, wgpu::QUERY_SET_MAX_QUERIES);
        let bytes = capacity as u64 * 8;
        Self {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: capacity,
            }),
            capacity,
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile resolve (capacity u64)"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            read: crate::gpu::buffers::readback(device, "profile readback (capacity u64)", bytes),
            period: queue.get_timestamp_period() as f64,
        }
    }

    /// Records the resolve of the first `used` queries into the readback buffer.
    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder, used: u32) {
        if used == 0 {
            return;
        }
        enc.resolve_query_set(&self.set, 0..used, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.read, 0, used as u64 * 8);
    }

    /// Reads the `used` timestamps back (waits for the GPU), in nanoseconds.
    pub fn read(&self, device: &wgpu::Device, used: u32, out: &mut Vec<f64>) -> anyhow::Result<()> {
        out.clear();
        if used == 0 {
            return Ok(());
        }
        let mut ticks = vec![0u64; used as usize];
        crate::gpu::buffers::read_mapped(
            device,
            &self.read,
            used as u64 * 8,
            bytemuck::cast_slice_mut(&mut ticks),
        )?;
        out.extend(ticks.iter().map(|&t| t as f64 * self.period));
        Ok(())
    }
}

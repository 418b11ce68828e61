"""Accelerator catalogue: the EC2 instance types genai-scale knows, with their accelerator facts.

Source: EC2 DescribeInstanceTypes (GpuInfo / NeuronInfo / VCpuInfo / MemoryInfo / NetworkInfo.EfaInfo), as shipped
in moto 5.2.5's instance-type data, cross-checked 2026-11 against the AWS EKS accelerated-AMI page
(https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html), the Neuron Inferentia2 architecture page
(2 NeuronCore-v2 and 32 GiB per chip) and torchx `named_resources_aws.py`. `tests/components/catalog/test_accelerators.py`
re-checks every row against DescribeInstanceTypes and fails on any disagreement.

Memory is what EC2 reports per accelerator (A10G and L4: 22,888 MiB, marketed as "24 GB"). An instance type outside
this table is usable when the caller states its accelerator facts (:class:`AcceleratorFacts`, or :func:`custom`).
What follows from the vendor (resources, taints, labels, AMI types, MIG) is in :mod:`components.catalog.vendors`.

:data:`CHIP_SPECS` holds each accelerator's datasheet figures (memory bandwidth, dense BF16/FP8 TFLOPS, INT8 TOPS),
with the vendor page and the date read beside each row: the inputs of the throughput estimate in
:mod:`components.catalog.throughput`. The A100 has two rows (``A100``: 40 GB, p4d; ``A100-80GB``: p4de);
:func:`chip_spec` picks by the instance's accelerator memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from components.catalog.vendors import Vendor, VendorFacts, facts_for

SOURCE = "EC2 DescribeInstanceTypes (moto 5.2.5 data), AWS EKS accelerated AMI docs, AWS Neuron docs"
CHECKED = "2026-11-23"

EFA_RESOURCE = "vpc.amazonaws.com/efa"



@dataclass(frozen=True)
class AcceleratorSpec:
    """Accelerator facts of one EC2 instance type."""

    instance_type: str
    family: str
    vendor: Vendor
    accelerator: str
    """Accelerator model as EC2 names it: A10G, L4, L40S, A100, H100, H200, Inferentia2, Trainium."""
    count: int
    """GPUs, or Neuron devices (chips), per instance."""
    memory_mib: int
    """Accelerator memory per GPU or Neuron device, as EC2 reports it."""
    neuron_cores: int
    """NeuronCores per instance (0 for NVIDIA)."""
    vcpus: int
    memory_mib_host: int
    efa_interfaces: int
    """Maximum EFA interfaces (0: no EFA support)."""
    instance_store_disks: int = 0
    """Local NVMe instance-store disks (0: EBS only). See :data:`INSTANCE_STORE`."""
    instance_store_gb: int = 0
    """Total instance-store capacity in GB, as EC2 reports it (``InstanceStorageInfo.TotalSizeInGB``)."""

    @property
    def memory_gib(self) -> float:
        """Accelerator memory per GPU/device in GiB."""
        return self.memory_mib / 1024

    @property
    def memory_gib_host(self) -> float:
        return self.memory_mib_host / 1024

    @property
    def total_memory_gib(self) -> float:
        return self.memory_gib * self.count

    @property
    def vendor_facts(self) -> VendorFacts:
        """The vendor's record: device resources, taint, labels, AMI types, GPU sharing, image family."""
        return facts_for(self.vendor)

    @property
    def k8s_resource(self) -> str:
        """The extended resource a pod requests for this accelerator."""
        return self.vendor_facts.device_resource

    @property
    def shards_over_cores(self) -> bool:
        """Whether models shard over the cores of a device (NeuronCores) rather than whole devices (GPUs)."""
        return self.vendor_facts.shards_over == "cores"

    @property
    def parallel_units(self) -> int:
        """Units a tensor-parallel model shards over: GPUs, or NeuronCores."""
        return self.neuron_cores if self.shards_over_cores else self.count

    @property
    def cores_per_device(self) -> int:
        """Cores on one device (NeuronCores per Neuron device; pods get whole devices); 0 when not known."""
        return self.neuron_cores // max(self.count, 1)

    @property
    def has_instance_store(self) -> bool:
        """Whether the instance has local NVMe disks (node-local storage can be striped over them)."""
        return self.instance_store_gb > 0

    @property
    def efa_supported(self) -> bool:
        return self.efa_interfaces > 0

    @property
    def mig_capable(self) -> bool:
        return self.vendor_facts.mig_capable(self.accelerator)

    @property
    def time_slicing_supported(self) -> bool:
        """Whether the device plugin can time-slice these devices among pods."""
        return self.vendor_facts.time_slicing


INSTANCE_STORE_SOURCE = ("EC2 DescribeInstanceTypes InstanceStorageInfo (Disks[].Count, TotalSizeInGB; all NVMe SSD, "
                         "encryption required), as shipped in moto 5.2.5; checked 2026-12-06")

# instance type: (NVMe disks, total GB); types missing here (inf2) have no instance store
INSTANCE_STORE: dict[str, tuple[int, int]] = {
    "g5.xlarge": (1, 250), "g5.2xlarge": (1, 450), "g5.4xlarge": (1, 600), "g5.8xlarge": (1, 900),
    "g5.12xlarge": (1, 3800), "g5.16xlarge": (1, 1900), "g5.24xlarge": (1, 3800), "g5.48xlarge": (2, 7600),
    "g6.xlarge": (1, 250), "g6.2xlarge": (1, 450), "g6.4xlarge": (1, 600), "g6.8xlarge": (2, 900),
    "g6.12xlarge": (4, 3760), "g6.16xlarge": (2, 1880), "g6.24xlarge": (4, 3760), "g6.48xlarge": (8, 7520),
    "g6e.xlarge": (1, 250), "g6e.2xlarge": (1, 450), "g6e.4xlarge": (1, 600), "g6e.8xlarge": (2, 900),
    "g6e.12xlarge": (2, 3800), "g6e.16xlarge": (2, 1900), "g6e.24xlarge": (2, 3800), "g6e.48xlarge": (4, 7600),
    "p4d.24xlarge": (8, 8000), "p4de.24xlarge": (8, 8000),
    "p5.48xlarge": (8, 30400), "p5e.48xlarge": (8, 30400), "p5en.48xlarge": (8, 30400),
    "trn1.2xlarge": (1, 474), "trn1.32xlarge": (4, 7600),
}
"""Local NVMe instance store per catalogue type (:data:`INSTANCE_STORE_SOURCE`); tests re-check it against EC2."""


def _row(instance_type: str, vendor: Vendor, accelerator: str, count: int, memory_mib: int, neuron_cores: int,
         vcpus: int, memory_mib_host: int, efa: int) -> AcceleratorSpec:
    disks, gb = INSTANCE_STORE.get(instance_type, (0, 0))
    return AcceleratorSpec(instance_type, instance_type.split(".")[0], vendor, accelerator, count, memory_mib,
                           neuron_cores, vcpus, memory_mib_host, efa, disks, gb)


# instance type, vendor, accelerator, count, MiB per accelerator, NeuronCores, vCPUs, host MiB, max EFA interfaces
CATALOG: dict[str, AcceleratorSpec] = {s.instance_type: s for s in (
    _row("g5.xlarge", "nvidia", "A10G", 1, 22888, 0, 4, 16384, 0),
    _row("g5.2xlarge", "nvidia", "A10G", 1, 22888, 0, 8, 32768, 0),
    _row("g5.4xlarge", "nvidia", "A10G", 1, 22888, 0, 16, 65536, 0),
    _row("g5.8xlarge", "nvidia", "A10G", 1, 22888, 0, 32, 131072, 1),
    _row("g5.12xlarge", "nvidia", "A10G", 4, 22888, 0, 48, 196608, 1),
    _row("g5.16xlarge", "nvidia", "A10G", 1, 22888, 0, 64, 262144, 1),
    _row("g5.24xlarge", "nvidia", "A10G", 4, 22888, 0, 96, 393216, 1),
    _row("g5.48xlarge", "nvidia", "A10G", 8, 22888, 0, 192, 786432, 1),
    _row("g6.xlarge", "nvidia", "L4", 1, 22888, 0, 4, 16384, 0),
    _row("g6.2xlarge", "nvidia", "L4", 1, 22888, 0, 8, 32768, 0),
    _row("g6.4xlarge", "nvidia", "L4", 1, 22888, 0, 16, 65536, 0),
    _row("g6.8xlarge", "nvidia", "L4", 1, 22888, 0, 32, 131072, 1),
    _row("g6.12xlarge", "nvidia", "L4", 4, 22888, 0, 48, 196608, 1),
    _row("g6.16xlarge", "nvidia", "L4", 1, 22888, 0, 64, 262144, 1),
    _row("g6.24xlarge", "nvidia", "L4", 4, 22888, 0, 96, 393216, 1),
    _row("g6.48xlarge", "nvidia", "L4", 8, 22888, 0, 192, 786432, 1),
    _row("g6e.xlarge", "nvidia", "L40S", 1, 45776, 0, 4, 32768, 0),
    _row("g6e.2xlarge", "nvidia", "L40S", 1, 45776, 0, 8, 65536, 0),
    _row("g6e.4xlarge", "nvidia", "L40S", 1, 45776, 0, 16, 131072, 0),
    _row("g6e.8xlarge", "nvidia", "L40S", 1, 45776, 0, 32, 262144, 1),
    _row("g6e.12xlarge", "nvidia", "L40S", 4, 45776, 0, 48, 393216, 1),
    _row("g6e.16xlarge", "nvidia", "L40S", 1, 45776, 0, 64, 524288, 1),
    _row("g6e.24xlarge", "nvidia", "L40S", 4, 45776, 0, 96, 786432, 2),
    _row("g6e.48xlarge", "nvidia", "L40S", 8, 45776, 0, 192, 1572864, 4),
    _row("p4d.24xlarge", "nvidia", "A100", 8, 40960, 0, 96, 1179648, 4),
    _row("p4de.24xlarge", "nvidia", "A100", 8, 81920, 0, 96, 1179648, 4),
    _row("p5.48xlarge", "nvidia", "H100", 8, 81920, 0, 192, 2097152, 32),
    _row("p5e.48xlarge", "nvidia", "H200", 8, 144384, 0, 192, 2097152, 32),
    _row("p5en.48xlarge", "nvidia", "H200", 8, 144384, 0, 192, 2097152, 16),
    _row("inf2.xlarge", "neuron", "Inferentia2", 1, 32768, 2, 4, 16384, 0),
    _row("inf2.8xlarge", "neuron", "Inferentia2", 1, 32768, 2, 32, 131072, 0),
    _row("inf2.24xlarge", "neuron", "Inferentia2", 6, 32768, 12, 96, 393216, 0),
    _row("inf2.48xlarge", "neuron", "Inferentia2", 12, 32768, 24, 192, 786432, 0),
    _row("trn1.2xlarge", "neuron", "Trainium", 1, 32768, 2, 8, 32768, 0),
    _row("trn1.32xlarge", "neuron", "Trainium", 16, 32768, 32, 128, 524288, 8),
)}


def lookup(instance_type: str) -> AcceleratorSpec | None:
    """The catalogue entry for an instance type, or None when it is not in the catalogue."""
    return CATALOG.get(instance_type)


def custom(instance_type: str, *, vendor: Vendor, accelerator: str, count: int, memory_gib: float,
           neuron_cores: int = 0, vcpus: int = 0, memory_gib_host: float = 0, efa_interfaces: int = 0) -> AcceleratorSpec:
    """Accelerator facts for an instance type outside the catalogue, as stated by the caller."""
    return AcceleratorSpec(instance_type, instance_type.split(".")[0], vendor, accelerator, count,
                           int(round(memory_gib * 1024)), neuron_cores, vcpus, int(round(memory_gib_host * 1024)),
                           efa_interfaces)


class AcceleratorFacts(BaseModel):
    """Accelerator facts for an instance type outside the catalogue, as a user states them (stack config, args)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    vendor: Vendor
    """Who makes the accelerator: ``nvidia`` (GPU) or ``neuron`` (Inferentia/Trainium)."""
    accelerator: str = Field(min_length=1)
    """Accelerator model, e.g. ``L40S`` or ``Inferentia2``."""
    count: int = Field(ge=1, le=64)
    """GPUs or Neuron devices per instance."""
    memory_gib: float = Field(gt=0, le=1024)
    """Memory per GPU or Neuron device, in GiB."""
    neuron_cores: int = Field(default=0, ge=0)
    """NeuronCores per instance (Neuron only). Default: 0."""
    efa_interfaces: int = Field(default=0, ge=0)
    """Maximum EFA interfaces. Default: 0 (no EFA)."""

    def spec(self, instance_type: str) -> AcceleratorSpec:
        """The catalogue-shaped record of ``instance_type`` with these facts (host vCPUs and memory unknown: 0)."""
        return custom(instance_type, vendor=self.vendor, accelerator=self.accelerator, count=self.count,
                      memory_gib=self.memory_gib, neuron_cores=self.neuron_cores,
                      efa_interfaces=self.efa_interfaces)


class ChipSpec(BaseModel):
    """Datasheet figures of one accelerator chip: what a roofline estimate of serving throughput needs.

    TFLOPS are dense (no 2:4 structured sparsity): datasheets print the sparse figure first, at twice the dense one.
    Figures are per GPU, or per Neuron device (chip: two NeuronCores on Inferentia2 and Trainium).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    accelerator: str = Field(min_length=1)
    """Accelerator name as :attr:`AcceleratorSpec.accelerator` spells it (``H100``), or a variant (``A100-80GB``)."""
    memory_gb: float = Field(gt=0)
    """Accelerator memory per chip in GB as the datasheet states it (EC2 reports MiB: see :class:`AcceleratorSpec`)."""
    memory_bandwidth_gb_per_second: float = Field(gt=0)
    """Peak memory bandwidth per chip (HBM or GDDR6), GB/s."""
    bf16_dense_tflops: float = Field(gt=0)
    """Peak dense BF16 (tensor core) TFLOPS per chip."""
    fp8_dense_tflops: float | None = Field(default=None, gt=0)
    """Peak dense FP8 TFLOPS per chip; None where the chip has no FP8 math (A10G, A100: FP8 weights run as BF16)."""
    int8_dense_tops: float | None = Field(default=None, gt=0)
    """Peak dense INT8 TOPS per chip (None: not stated)."""
    source: str = Field(pattern=r"^https://")
    """The datasheet or product page the figures come from."""
    as_of: date
    """When the source was read."""
    note: str = ""
    """Caveats: which form factor, figures not stated by the vendor, derived values."""

    def dense_tflops(self, precision: str) -> float:
        """Dense TFLOPS for the matmuls of a model served at ``precision``: FP8 math for ``fp8`` and INT8 math for
        ``int8`` (W8A8) when the chip has it, else BF16; ``int4`` (AWQ/GPTQ, weight-only) dequantises to BF16."""
        if precision == "fp8":
            return self.fp8_dense_tflops or self.bf16_dense_tflops
        if precision == "int8":
            return self.int8_dense_tops or self.bf16_dense_tflops
        return self.bf16_dense_tflops


_NV_READ = date(2026, 12, 6)
A10_DATASHEET = "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a10/pdf/a10-datasheet.pdf"
A10G_COMPARISON = "https://www.baseten.co/blog/nvidia-a10-vs-a10g-for-ml-model-inference/"
L4_PAGE = "https://www.nvidia.com/en-us/data-center/l4/"
L40S_PAGE = "https://www.nvidia.com/en-us/data-center/l40s/"
A100_DATASHEET = ("https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
                  "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf")
H100_PAGE = "https://www.nvidia.com/en-us/data-center/h100/"
H200_PAGE = "https://www.nvidia.com/en-us/data-center/h200/"
INF2_ARCH = "https://awsdocs-neuron.readthedocs-hosted.com/en/latest/general/arch/neuron-hardware/inferentia2.html"
TRN1_ARCH = "https://awsdocs-neuron.readthedocs-hosted.com/en/latest/general/arch/neuron-hardware/trainium.html"

CHIP_SPECS: dict[str, ChipSpec] = {c.accelerator: c for c in (
    ChipSpec(accelerator="A10G", memory_gb=24, memory_bandwidth_gb_per_second=600, bf16_dense_tflops=125,
             int8_dense_tops=250, source=A10_DATASHEET, as_of=_NV_READ,
             note="AWS's variant of the A10 (g5); neither NVIDIA nor AWS publishes an A10G datasheet. Memory and "
                  "bandwidth (24 GB GDDR6, 600 GB/s) are the A10's (same per " + A10G_COMPARISON + "); the tensor "
                  "figures are the A10's and the A10G's are lower (not published: prefill estimates are optimistic)"),
    ChipSpec(accelerator="L4", memory_gb=24, memory_bandwidth_gb_per_second=300, bf16_dense_tflops=121,
             fp8_dense_tflops=242.5, int8_dense_tops=242.5, source=L4_PAGE, as_of=_NV_READ,
             note="datasheet: BF16 242, FP8 485, INT8 485 TOPS with sparsity; dense is half"),
    ChipSpec(accelerator="L40S", memory_gb=48, memory_bandwidth_gb_per_second=864, bf16_dense_tflops=362.05,
             fp8_dense_tflops=733, int8_dense_tops=733, source=L40S_PAGE, as_of=_NV_READ,
             note="datasheet: BF16 362.05 | 733*, FP8 733 | 1,466*, INT8 733 | 1,466* (* with sparsity)"),
    ChipSpec(accelerator="A100", memory_gb=40, memory_bandwidth_gb_per_second=1555, bf16_dense_tflops=312,
             int8_dense_tops=624, source=A100_DATASHEET, as_of=_NV_READ,
             note="A100 40GB SXM (p4d); no FP8 math (FP8 checkpoints run as weight-only on Ampere)"),
    ChipSpec(accelerator="A100-80GB", memory_gb=80, memory_bandwidth_gb_per_second=2039, bf16_dense_tflops=312,
             int8_dense_tops=624, source=A100_DATASHEET, as_of=_NV_READ,
             note="A100 80GB SXM (p4de): same compute as the 40GB part, HBM2e at 2,039 GB/s"),
    ChipSpec(accelerator="H100", memory_gb=80, memory_bandwidth_gb_per_second=3350, bf16_dense_tflops=989.5,
             fp8_dense_tflops=1979, int8_dense_tops=1979, source=H100_PAGE, as_of=_NV_READ,
             note="H100 SXM (p5): BF16 1,979*, FP8 3,958*, INT8 3,958* TOPS (* with sparsity; dense is half)"),
    ChipSpec(accelerator="H200", memory_gb=141, memory_bandwidth_gb_per_second=4800, bf16_dense_tflops=989.5,
             fp8_dense_tflops=1979, int8_dense_tops=1979, source=H200_PAGE, as_of=_NV_READ,
             note="H200 SXM (p5e, p5en): the H100's compute with 141 GB HBM3e at 4.8 TB/s"),
    ChipSpec(accelerator="Inferentia2", memory_gb=32, memory_bandwidth_gb_per_second=820, bf16_dense_tflops=190,
             fp8_dense_tflops=190, int8_dense_tops=380, source=INF2_ARCH, as_of=_NV_READ,
             note="per chip (2 NeuronCore-v2): 190 FP16/BF16/cFP8/TF32 TFLOPS, 380 INT8 TOPS, 32 GiB HBM at "
                  "820 GiB/s (older pages: 32 GB, 820 GB/s; the GB figure is used)"),
    ChipSpec(accelerator="Trainium", memory_gb=32, memory_bandwidth_gb_per_second=820, bf16_dense_tflops=190,
             fp8_dense_tflops=190, int8_dense_tops=380, source=TRN1_ARCH, as_of=_NV_READ,
             note="Trainium (trn1) chip: 2 NeuronCore-v2, same compute and memory as Inferentia2"),
)}
"""Datasheet figures per accelerator (keys as :attr:`AcceleratorSpec.accelerator`, plus ``A100-80GB``)."""


def chip_spec(accelerator: str, memory_mib: int | None = None) -> ChipSpec | None:
    """The datasheet figures of an accelerator, or None when unknown; an A100 with more than 40 GiB (p4de) gets the
    80 GB part's bandwidth."""
    if accelerator == "A100" and memory_mib is not None and memory_mib > 40 * 1024:
        return CHIP_SPECS["A100-80GB"]
    return CHIP_SPECS.get(accelerator)
